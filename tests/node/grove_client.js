// A Node.js client for Grove, generated at run time from proto/ with @grpc/proto-loader.
//
// Usage: node grove_client.js HOST:PORT
//
// Opens a session, creates a node, reads it, fails a compare-and-set with a stale version
// (reading Grove's typed ErrorCode from the google.rpc.Status details), watches the node
// through the server-streaming Watch call, and takes a lock with its fencing token.
// This is the program shown in docs/clients.md; the test suite runs it (t71_node).
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTO_DIR = path.join(__dirname, "..", "..", "proto");
const definition = protoLoader.loadSync(
  ["grove/v1/nodes.proto", "grove/v1/sessions.proto", "grove/v1/watch.proto", "grove/v1/locks.proto",
    "google/rpc/status.proto"],
  // Field names as in the .proto files, bytes as Buffers, 64-bit integers as strings (session ids do not fit a JS number),
  // enums by name.
  { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
);
const proto = grpc.loadPackageDefinition(definition);
const v1 = proto.grove.v1;

// The decoders for the error details: google.rpc.Status carrying a grove.v1.ErrorDetail.
const pbRoot = new protobuf.Root();
pbRoot.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
pbRoot.loadSync(["google/rpc/status.proto", "grove/v1/types.proto"], { keepCase: true });
const StatusMessage = pbRoot.lookupType("google.rpc.Status");
const ErrorDetail = pbRoot.lookupType("grove.v1.ErrorDetail");

/** Grove's ErrorCode name from a failed call's `grpc-status-details-bin` trailer. */
function errorCode(err) {
  const raw = err.metadata && err.metadata.get("grpc-status-details-bin")[0];
  if (!raw) return "NONE";
  const status = StatusMessage.decode(raw);
  for (const any of status.details) {
    if (any.type_url === "type.googleapis.com/grove.v1.ErrorDetail") {
      return ErrorDetail.toObject(ErrorDetail.decode(any.value), { enums: String }).code;
    }
  }
  return "NONE";
}

const unary = (client, method, request, metadata = new grpc.Metadata()) =>
  new Promise((resolve, reject) =>
    client[method](request, metadata, { deadline: Date.now() + 10000 }, (err, resp) => (err ? reject(err) : resolve(resp))),
  );

async function main() {
  const target = process.argv[2];
  const creds = grpc.credentials.createInsecure();
  const nodes = new v1.Nodes(target, creds);
  const sessions = new v1.Sessions(target, creds);
  const locks = new v1.Locks(target, creds);
  const watch = new v1.Watch(target, creds);

  const created = await unary(nodes, "Create", { path: "/js", data: Buffer.from("hello") });
  console.log("created", created.path);
  const got = await unary(nodes, "Get", { path: "/js" });
  console.log("got", got.data.toString(), "version", got.stat.version);

  try {
    await unary(nodes, "Set", { path: "/js", data: Buffer.from("x"), version: got.stat.version + 5 });
    throw new Error("a stale version was accepted");
  } catch (err) {
    if (err.code !== grpc.status.FAILED_PRECONDITION) throw err;
    console.log("stale version:", errorCode(err));
  }

  // Watch from the zxid after the read, then change the node: the event arrives on the stream.
  const stream = watch.Watch();
  const event = new Promise((resolve, reject) => {
    stream.on("data", (resp) => {
      if (resp.created) {
        unary(nodes, "Set", { path: "/js", data: Buffer.from("changed"), version: got.stat.version }).catch(reject);
      } else if (resp.events.length > 0) {
        resolve(resp.events[0]);
      }
    });
    stream.on("error", (err) => { if (err.code !== grpc.status.CANCELLED) reject(err); });
  });
  stream.write({
    create: { watch_id: 1, path: "/js", kind: "NODE", start_zxid: String(BigInt(got.header.zxid) + 1n), include_data: true },
  });
  const ev = await event;
  console.log("watch event:", ev.type, ev.path, ev.data.toString());
  stream.cancel();

  // A lock needs a session: its holder node is ephemeral, so a crashed holder releases it.
  const session = await unary(sessions, "Open", { timeout_ms: 10000 });
  const md = new grpc.Metadata();
  md.set("grove-session-id", session.session_id);
  md.set("grove-session-secret", session.secret.toString("hex"));
  const grant = await unary(locks, "Acquire", { paths: ["/locks/js"], kind: "MUTEX", timeout_ms: 5000 }, md);
  console.log("lock token:", grant.token, "node:", grant.nodes[0]);
  const released = await unary(locks, "Release", { node: grant.nodes[0] }, md);
  console.log("released:", released.released);
  await unary(sessions, "Close", { session_id: session.session_id, secret: session.secret });

  // Not c.close(): proto-loader also gives each method a lower camel case alias, and Sessions has
  // a Close method, which shadows the client's own close().
  for (const c of [nodes, sessions, locks, watch]) grpc.Client.prototype.close.call(c);
}

main().catch((err) => {
  console.error("failed:", err.code !== undefined ? `${err.code} ${err.details}` : err);
  process.exit(1);
});
