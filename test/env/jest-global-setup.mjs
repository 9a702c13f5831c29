// Jest loads global setup outside its module system; tsx lets it import the TypeScript stack.
import { register } from 'tsx/esm/api';

register();
const { globalSetup } = await import('./global-setup.ts');
export default globalSetup;
