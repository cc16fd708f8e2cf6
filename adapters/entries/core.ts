/**
 * The runtime-agnostic core of wg-js (`import ... from "wg-js"`): the
 * WireGuard engine, wg-quick(8) configs and wg(8)'s formats, keys, the
 * userspace TCP/IP stack, the in-process tunnel over a host you pass in,
 * and the ports a host implements (with in-memory fakes for tests).
 * Nothing here touches a runtime's globals: the host entries ("wg-js/node",
 * "wg-js/deno", "wg-js/bun", "wg-js/browser") wire it to one.
 *
 * @example
 * import { openTunnel, type TunnelDeps } from "wg-js";
 * const tunnel = await openTunnel(myHost satisfies TunnelDeps, configText);
 * @module
 */

// The engine (sans-IO) and its configuration; its WebAssembly half as bytes
// (new WebAssembly.Module(wasmBytes)) for runtimes that compile them.
export { wasmBytes } from "#engine-wasm";
export { Engine, Output, type EngineOptions, type Drops, type Endpoint } from "../../src/engine.ts";
export {
  keyFromBase64, keyToBase64, keyFromHex, keyHex,
  type DeviceConfig, type PeerConfig, type DeviceStatus, type PeerStatus,
} from "../../src/config.ts";
export {
  ConfigError, parseWgQuick, toDeviceConfig, stripWgQuick,
  type WgQuickConfig, type WgQuickInterface, type WgQuickPeer, type InterfaceAddress, type HostPort, type ExtraSection,
} from "../../src/wgquick.ts";
export { formatShow, formatShowConf, formatShowField, type ShowField, type ShowOptions } from "../../src/show.ts";
export { UapiSession, UapiError, formatUapiGet, parseUapiSet, type UapiSessionOptions } from "../../src/uapi.ts";
export type { X25519, Aead } from "../../src/crypto.ts";
export { nobleX25519 } from "../../src/x25519.ts";
export { generatePrivateKey, generatePresharedKey, publicKeyOf } from "../../src/keys.ts";

// The userspace TCP/IP stack.
export {
  Stack, TcpListener, TcpForwarder, TcpConn, UdpSocket, NetError,
  type ForwardFlow, type ForwardOptions, type StackOptions, type Stats, type Usage, type UdpMessage, type NetErrorCode, type TcpState,
} from "../../src/netstack/index.ts";

// A tunnel in the process, over a host's parts.
export {
  openTunnel, Tunnel, type TunnelDeps, type TunnelConfig, type TunnelOptions, type TunnelStatus, type ConnectTlsOptions, type TunnelFetchInit,
} from "../tunnel/tunnel.ts";
export type { TlsConnector, TlsConn, TlsClientOptions } from "../ports/tls.ts";
export type { HttpRequestInit } from "../http/client.ts";
export type { HttpHandler } from "../http/server.ts";

// The ports: what a host implements, the one Device over them, and fakes.
export { Device } from "../ports/device.ts";
export type { Tun } from "../ports/tun.ts";
export { endOfBurst, type Bind } from "../ports/bind.ts";
export { StackTun } from "../ports/stack-tun.ts";
export { FakeTun, FakeBind, bindPair, pingPacket, describePacket, FAKE_ENDPOINTS, type FakeTunOptions } from "../ports/fake.ts";
export { UserError, MissingPackageError, NoTunError } from "../ports/errors.ts";
export { join, type StreamEnd } from "../ports/streams.ts";
export type {
  Host, ServerHost, Clock, EngineHost, Stdio, Files, Processes, Resolver, Network, Conn, UnixSockets,
  TcpStream, HostStream, HostServer, TcpSockets, HostUdp, UdpSockets, TunDevices, TunSupport,
} from "../ports/host.ts";
export type {
  UpgradeRequest, Refusal, ServerSocket, SocketEvents, WebSocketHandler, WebSocketListenOptions, WebSocketListener,
  WebSocketServers, IncomingSession, WebTransportSession, WebTransportListener, WebTransportServers,
  AcceptedWebSocket, UpgradeWebSocket,
} from "../ports/websocket.ts";

/** This package's version. */
export const VERSION = "0.1.0";
