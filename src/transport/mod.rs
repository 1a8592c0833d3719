//! The only code that touches sockets, stdin/stdout and the environment.
