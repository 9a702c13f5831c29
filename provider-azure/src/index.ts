// The Azure Key Vault provider process. Its server lands here with issue 3.
export const PROVIDER_NAME = 'azure';
