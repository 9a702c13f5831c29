// JSON logs on stdout; never a secret value or token (callers log names, reasons and versions).
import winston from 'winston';

export type Logger = winston.Logger;

/** `transport`: where the lines go (stdout; a test passes a stream to read them back). */
export function createLogger(level: string, transport: winston.transport = new winston.transports.Console()): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'manager' },
    transports: [transport],
  });
}
