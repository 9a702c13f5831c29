// JSON logs on stdout. Callers log names, versions and codes — never values, keys, certificate
// bodies or tokens; `redact` shortens anything token-shaped that might slip into an error text.
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level: string): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'provider-azure' },
    transports: [new winston.transports.Console()],
  });
}

const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g;

export function redact(text: string): string {
  return text.replace(JWT, (t) => `${t.slice(0, 4)}##### REDACTED #####${t.slice(-4)}`);
}

/** A tenant's value quoted in a message: bounded, as messages reach status, Events and logs. */
export function quote(value: string): string {
  return `'${value.length > 64 ? `${value.slice(0, 64)}…` : value}'`;
}
