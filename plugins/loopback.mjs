// @ts-check
// Servers of the local stack listen on 127.0.0.1 only, and never keep a finished or failed run alive.

import { generate } from "selfsigned";

export const HOST = "127.0.0.1";

/**
 * Listens on 127.0.0.1:`port` (0 picks a free one). A port in use becomes an error that names the
 * variable to change. The server and its (keep-alive) connections are unref'd: the offline servers
 * keep the process alive while it runs, these alone must not.
 * @template {import('node:net').Server} S
 * @param {S} server @param {number} port @param {string} portVariable
 * @returns {Promise<S>}
 */
export async function listenOnLoopback(server, port, portVariable) {
  await new Promise((done, fail) => {
    server.once("error", (/** @type {NodeJS.ErrnoException} */ error) =>
      fail(
        error.code === "EADDRINUSE"
          ? new Error(
              `Port ${port} is taken: is another local stack running? Stop it, or set ${portVariable}.`,
            )
          : error,
      ),
    );
    server.listen(port, HOST, () => done(undefined));
  });
  server.unref();
  server.on("connection", (/** @type {import('node:net').Socket} */ socket) => socket.unref());
  return server;
}

/**
 * Closes a server at once: its keep-alive connections too (SDK clients keep sockets open, and
 * `close()` alone would wait for them).
 * @param {import('node:http').Server} server
 * @returns {Promise<void>}
 */
export function closeServer(server) {
  return new Promise((done) => {
    server.close(() => done());
    server.closeAllConnections();
  });
}

/**
 * A self-signed TLS certificate for 127.0.0.1 that is its own CA: the client trusts exactly it
 * (`ca: cert`), nothing about TLS verification is switched off.
 * @param {string} commonName
 */
export function loopbackCertificate(commonName) {
  return generate([{ name: "commonName", value: commonName }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: HOST }] },
    ],
  });
}
