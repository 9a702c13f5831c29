// Endpoints are written `unix:///path/to.sock` (or `unix://path`, read as absolute, as the CSI
// driver's providers do). Only unix sockets: the provider API carries credentials and secrets and
// must not listen on a network.
import { ProviderError } from './errors.js';

export function socketPath(endpoint: string): string {
  const m = /^unix:\/\/(.+)$/i.exec(endpoint.trim());
  if (!m?.[1])
    throw new ProviderError(
      'InvalidArgument',
      `invalid endpoint '${endpoint}': expected unix:///path/to/provider.sock`,
    );
  return '/' + m[1].replace(/^\/+/, '');
}
