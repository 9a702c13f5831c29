// The manager process. Its reconcile loop lands here with issue 4.
export const CONTROLLER_NAME = 'secret-sync-controller';
