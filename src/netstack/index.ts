// src/netstack: a userspace TCP/IP stack for when there is no TUN device
// (no root, browsers, edge functions). Sans-IO: IP packets in and out,
// streams and sockets to the application. See stack.ts for how a driver
// runs it.
export {
  Stack, DEFAULT_BACKLOG, DEFAULT_MAX_CONNECTIONS, TcpListener, TcpForwarder, TcpConn, UdpSocket, NetError,
  type ForwardFlow, type ForwardOptions,
  type StackOptions, type Stats, type Usage, type UdpMessage, type NetErrorCode, type TcpState,
} from "./stack.ts";
