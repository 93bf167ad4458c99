/**
 * Names shared by the daemon and its clients.
 * @module
 */

/** Name under which a daemon serves its own control protocol (protocols/bulkhead.control.json). */
export const CONTROL_SERVICE = 'bulkhead.control';
