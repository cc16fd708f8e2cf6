// The one family of errors meant for the user. Whatever throws one (a bad
// argument, a missing permission, a TUN device that cannot be created, a
// missing optional package) words its message as the one line the CLI
// prints after "wg: ": what is wrong, and where or what to do. Anything
// else that reaches the CLI is a bug, printed as "wg: internal error: ...".

/** An error whose message is one line for the user. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * An optional package a path needs is not installed (koffi for the TUN
 * device on Node, ws for the relay on Node); the message names it.
 */
export class MissingPackageError extends UserError {
  /**
   * @param packageName the npm package
   * @param what what needs it ("the relay on Node")
   * @param instead another way that needs no such package, if there is one
   */
  constructor(readonly packageName: string, what: string, instead?: string) {
    super(`${what} needs the ${packageName} package, which is not installed (npm install ${packageName}${instead ? `; or ${instead}` : ""})`);
  }
}

/** The host cannot open a TUN device (another OS, no FFI, no libc.so.6): `wg up --netstack` still works. */
export class NoTunError extends UserError {
  constructor(why: string) {
    super(`this host has no TUN support yet (${why}): use wg up --netstack, the userspace TCP/IP stack, instead`);
  }
}
