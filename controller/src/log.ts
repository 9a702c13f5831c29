// JSON logs on stdout; never a secret value or token (callers log names, reasons and versions).
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level: string): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'manager' },
    transports: [new winston.transports.Console()],
  });
}
