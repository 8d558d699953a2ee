// A second tether client for Node.js, built only from the .proto files, for
// the error model: what the comments of proto/tether/v1 say a client does with
// Welcome.limits, a failed message, a refused Subscribe and the code a
// stream ends with (TetherService.Connect's table).
//
// Usage:
//
//   node errors.mjs ADDRESS MODE
//
// MODE "limits": open a session, read Welcome.limits and obey them (a
// message with a payload of exactly max_message_bytes, in a frame within
// max_frame_bytes); send one byte more and expect it failed (Error with its
// seq and INVALID_ARGUMENT, then an Ack covering it); subscribe with one bad
// topic and expect an Error naming it and carrying the request_id; then send
// a second Hello, a protocol violation, and expect INVALID_ARGUMENT: terminal.
//
// MODE "connect": open a session and report how the stream ends (the test's
// server refuses it).
//
// In both modes the end code is classified by the table: a terminal code
// ends the client (exit 0, no reconnect); a retryable one makes it reconnect
// once, which the test then sees as a "reconnecting" event.
//
// Events, one JSON object per line on stdout: welcome, obeyed, failed,
// acked, subscribe-error, ended {code, class}, reconnecting, fatal. Exit
// codes: 0 done; 1 a surprise (a "fatal" event says which); 2 timeout; 64
// usage.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const addr = process.argv[2];
const mode = process.argv[3];
if (!addr || !['limits', 'connect'].includes(mode)) {
  process.stderr.write('usage: node errors.mjs ADDRESS limits|connect\n');
  process.exit(64);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = path.resolve(here, '../../../proto');
const definition = protoLoader.loadSync(path.join(protoDir, 'tether/v1/tether_service.proto'), {
  includeDirs: [protoDir],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const tetherv1 = grpc.loadPackageDefinition(definition).tether.v1;
// The request serializer, to measure a frame as gRPC counts it
// (Limits.max_frame_bytes: the serialized ConnectRequest).
const serializeRequest = definition['tether.v1.TetherService'].Connect.requestSerialize;

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function fatal(msg) {
  emit('fatal', { error: msg });
  process.stderr.write(`tether errors client: ${msg}\n`);
  process.exit(1);
}

setTimeout(() => {
  emit('fatal', { error: 'timeout' });
  process.exit(2);
}, 20000).unref();

// TetherService.Connect's table: how the client classifies the code a
// stream ended with. welcomed: whether Welcome came on this stream
// (UNAUTHENTICATED after Welcome means "credentials expired: retry once").
function classify(code, welcomed) {
  const s = grpc.status;
  switch (code) {
    case s.OK:
      return 'by-goaway';
    case s.INVALID_ARGUMENT:
    case s.PERMISSION_DENIED:
    case s.ABORTED:
      return 'terminal';
    case s.UNAUTHENTICATED:
      return welcomed ? 'retry-once' : 'terminal';
    case s.RESOURCE_EXHAUSTED:
    case s.UNAVAILABLE:
    case s.DEADLINE_EXCEEDED:
    case s.INTERNAL:
    case s.UNKNOWN:
      return 'retryable';
    default:
      return 'terminal'; // never from tether
  }
}

const client = new tetherv1.TetherService(addr, grpc.credentials.createInsecure());
let attempts = 0;

function connect() {
  attempts++;
  const call = client.Connect();
  let welcomed = false;
  let limits = null;
  let seq = 0;
  const failed = new Map(); // seq → Error, of messages that failed
  let step = 'welcome';

  const send = (frame) => call.write(frame);
  const message = (payloadBytes) => {
    seq++;
    const frame = { message: { seq: String(seq), topic: 'sink', payload: Buffer.alloc(payloadBytes, 120) } };
    return { frame, size: serializeRequest(frame).length, seq };
  };

  call.on('error', () => {});
  call.on('status', (s) => {
    const cls = classify(s.code, welcomed);
    emit('ended', { code: s.code, details: s.details, class: cls, step });
    if ((cls === 'retryable' || cls === 'retry-once') && attempts < 2) {
      emit('reconnecting', { attempt: attempts + 1 });
      return setTimeout(connect, 100);
    }
    process.exit(0);
  });
  call.on('data', (f) => {
    switch (f.frame) {
      case 'welcome': {
        welcomed = true;
        limits = f.welcome.limits;
        emit('welcome', { clientId: f.welcome.clientId, limits });
        if (mode !== 'limits') return;
        // Obey: a payload of exactly max_message_bytes, in a frame within
        // max_frame_bytes.
        const ok = message(limits.maxMessageBytes);
        if (ok.size > limits.maxFrameBytes) return fatal(`a ${ok.size}-byte frame exceeds max_frame_bytes ${limits.maxFrameBytes}`);
        emit('obeyed', { seq: ok.seq, payload: limits.maxMessageBytes, frame: ok.size, maxFrameBytes: limits.maxFrameBytes });
        send(ok.frame);
        // One byte more: a failed message (the frame is still within
        // max_frame_bytes, so the stream goes on).
        const over = message(limits.maxMessageBytes + 1);
        if (over.size > limits.maxFrameBytes) return fatal('the over-limit frame exceeds max_frame_bytes');
        send(over.frame);
        step = 'failed';
        return;
      }
      case 'ping':
        return send({ pong: { id: f.ping.id, sentAt: f.ping.sentAt } });
      case 'error': {
        const e = f.error;
        if (step === 'failed' && e.seq !== '0') {
          failed.set(e.seq, e);
          return emit('failed', { seq: e.seq, code: e.code, message: e.message });
        }
        if (step === 'subscribe') {
          emit('subscribe-error', { requestId: e.requestId, topic: e.topic, code: e.code, message: e.message });
          // Now a protocol violation: a second Hello.
          step = 'violation';
          return send({ hello: {} });
        }
        return fatal(`unexpected Error frame at step ${step}: ${JSON.stringify(e)}`);
      }
      case 'ack': {
        // An Ack means handled or failed: the failed message's Error came
        // first.
        emit('acked', { seq: f.ack.seq });
        if (step === 'failed' && BigInt(f.ack.seq) >= BigInt(seq)) {
          if (!failed.has(String(seq))) return fatal(`ack ${f.ack.seq} covers message ${seq} without its Error frame`);
          step = 'subscribe';
          send({ subscribe: { topics: ['fine', 'has space'], requestId: '42' } });
        }
        return;
      }
      default:
        return fatal(`unexpected frame ${f.frame} at step ${step}`);
    }
  });
  send({ hello: { clientId: 'node-errors', heartbeatInterval: { seconds: '1', nanos: 0 } } });
}

connect();
