// The provider API package. The proto file, its loader and generated types land here with issue 3.
export const PROVIDER_API_VERSION = 'v1alpha1';
