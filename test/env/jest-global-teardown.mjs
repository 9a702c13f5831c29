import { register } from 'tsx/esm/api';

register();
const { globalTeardown } = await import('./global-setup.ts');
export default globalTeardown;
