// A tether client for Node.js built only from the .proto files in proto/tether/v1
// (no generated code, no tether SDK): @grpc/proto-loader reads the protocol at
// start-up and @grpc/grpc-js carries it.
//
// Usage:
//
//   node client.mjs ADDRESS COUNT
//
// ADDRESS (or $TETHER_ADDR) is host:port of a tether server (plaintext).
// COUNT (or $TETHER_COUNT) is how many messages to receive before closing the
// session and exiting 0.
//
// Other settings, from the environment:
//
//   TETHER_CLIENT_ID           Hello.client_id (default "node-client")
//   TETHER_TOPICS              comma-separated Hello.topics (default none)
//   TETHER_HEARTBEAT_MS        Hello.heartbeat_interval in ms (default 5000)
//   TETHER_TIMEOUT_MS          overall deadline in ms (default 30000)
//   TETHER_RECONNECT_DELAY_MS  first reconnect delay after a broken stream, in
//                              ms; doubles per failed attempt up to 8× (default 250)
//
// Every event is one JSON object on one line of stdout, for example
//
//   {"event":"welcome","sessionId":"…","resumed":false,"resumeStatus":"RESUME_STATUS_NOT_REQUESTED",…}
//   {"event":"message","seq":"1","payload":"…"}
//   {"event":"ack","seq":"3"}
//   {"event":"pong","id":"1"}                   (we answered a server ping)
//   {"event":"disconnected","code":14,…}        (the stream broke; we resume)
//   {"event":"closed"}                          (our Close was answered with OK)
//
// Exit codes: 0 done; 1 protocol surprise or transport failure we cannot
// recover from (an {"event":"fatal"} line and a message on stderr say which);
// 2 overall timeout; 64 usage.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

// ---- configuration -------------------------------------------------------

const env = process.env;
const addr = process.argv[2] || env.TETHER_ADDR;
const want = Number(process.argv[3] || env.TETHER_COUNT);
const clientId = env.TETHER_CLIENT_ID ?? 'node-client';
const topics = (env.TETHER_TOPICS ?? '').split(',').filter(Boolean);
const heartbeatMs = Number(env.TETHER_HEARTBEAT_MS ?? 5000);
const timeoutMs = Number(env.TETHER_TIMEOUT_MS ?? 30000);
const reconnectDelayMs = Number(env.TETHER_RECONNECT_DELAY_MS ?? 250);

if (!addr || !Number.isInteger(want) || want < 1 || !(heartbeatMs > 0) || !(timeoutMs > 0) || !(reconnectDelayMs >= 0)) {
  process.stderr.write('usage: node client.mjs ADDRESS COUNT  (or TETHER_ADDR, TETHER_COUNT; COUNT ≥ 1)\n');
  process.exit(64);
}

// ---- the protocol, from the .proto files alone ---------------------------

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = path.resolve(here, '../../../proto');
const definition = protoLoader.loadSync(path.join(protoDir, 'tether/v1/tether_service.proto'), {
  includeDirs: [protoDir],
  keepCase: false, // camelCase field names everywhere: clientId, heartbeatInterval, …
  longs: String, // uint64 seq, ping ids and Timestamp seconds arrive as decimal strings
  enums: String, // enum values arrive as their names: RESUME_STATUS_RESUMED, …
  defaults: true, // unset scalars read as their zero value
  oneofs: true, // frame.frame names the member that is set
});
const tetherv1 = grpc.loadPackageDefinition(definition).tether.v1;

// ---- output ---------------------------------------------------------------

// emit writes one event line. process.stdout is synchronous for pipes and
// files on Linux, so nothing is lost when we exit right after.
function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n');
}

let finished = false;

function exit(code) {
  finished = true;
  clearTimeout(overall);
  if (cur) cur.stop();
  process.exit(code);
}

function fatal(msg) {
  if (finished) return;
  emit('fatal', { error: msg });
  process.stderr.write(`tether node client: ${msg}\n`);
  exit(1);
}

const overall = setTimeout(() => {
  const msg = `timeout: received ${delivered} of ${want} messages within ${timeoutMs}ms`;
  emit('fatal', { error: msg });
  process.stderr.write(`tether node client: ${msg}\n`);
  exit(2);
}, timeoutMs);

// ---- helpers --------------------------------------------------------------

const durationMs = (d) => (d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : 0);
const duration = (ms) => ({ seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
const timestampNow = () => {
  const ms = Date.now();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
};
const timestampMs = (ts) => Number(ts.seconds) * 1000 + Math.round(ts.nanos / 1e6);

// The codes TetherService.Connect's table marks terminal: do not reconnect.
// (UNAUTHENTICATED is terminal only before Welcome; after it the credentials
// expired, and this client, which has no fresh ones, stops as well.) Any
// code not in the table is terminal too; RESOURCE_EXHAUSTED, UNAVAILABLE,
// DEADLINE_EXCEEDED, INTERNAL and UNKNOWN are retryable; OK goes by the
// GoAway reason.
const RETRYABLE = new Set([
  grpc.status.RESOURCE_EXHAUSTED, grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED,
  grpc.status.INTERNAL, grpc.status.UNKNOWN,
]);
// GoAway reasons that say "do not reconnect (or not resume)".
const NO_RECONNECT = new Set(['GO_AWAY_REASON_TAKEN_OVER', 'GO_AWAY_REASON_CLOSED_BY_ADMIN', 'GO_AWAY_REASON_PROTOCOL_ERROR']);

// ---- session state (survives streams) --------------------------------------

let sessionId = ''; // from the first Welcome
let resumeToken = ''; // from the most recent Welcome: tokens rotate
let lastReceived = 0n; // highest server seq received and delivered
let lastAcked = 0n; // highest seq we sent an Ack for
let delivered = 0; // messages delivered to the "application"
let closing = false; // we sent Close: the stream ending is ours
let failures = 0; // consecutive attempts that got no Welcome
let streams = 0;
let cur = null; // the current Stream

// Stream is one call of TetherService.Connect, on its own channel.
class Stream {
  constructor() {
    this.n = ++streams;
    // A fresh channel per attempt, with a private subchannel pool, so a
    // broken connection is never reused and grpc-js's own idle/backoff state
    // does not delay the resume: reconnect policy is ours (see reconnect).
    this.client = new tetherv1.TetherService(addr, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    });
    this.call = this.client.Connect();
    this.welcomed = false;
    this.ended = false;
    this.goAway = null;
    this.interval = heartbeatMs;
    this.deadAfter = 0;
    this.lastRead = Date.now();
    this.lastWrite = Date.now();
    this.pingId = 0n;
    this.pings = new Map(); // our ping id → sent at (ms)
    this.ackTimer = null;
    this.beat = null;
    this.resuming = sessionId !== '';

    this.call.on('data', (f) => this.onFrame(f));
    // 'error' comes with every non-OK status; 'status' always follows, and
    // is where we act. Without an 'error' listener grpc-js would throw.
    this.call.on('error', () => {});
    this.call.on('status', (s) => this.onEnd(s));

    const hello = {
      clientId,
      heartbeatInterval: duration(heartbeatMs),
      topics,
      metadata: { client: 'node-grpc-js', stream: String(this.n) },
    };
    if (this.resuming) {
      hello.resume = { sessionId, resumeToken, lastReceivedSeq: lastReceived.toString() };
    }
    emit('hello', { stream: this.n, resume: this.resuming ? { sessionId, lastReceivedSeq: lastReceived.toString() } : null });
    this.write({ hello });
  }

  write(frame) {
    if (this.ended) return;
    this.call.write(frame);
    this.lastWrite = Date.now();
  }

  stop() {
    clearTimeout(this.ackTimer);
    clearInterval(this.beat);
    this.ackTimer = this.beat = null;
    if (!this.ended) {
      this.ended = true;
      this.call.cancel();
    }
    this.client.close();
  }

  onFrame(f) {
    if (this.ended || finished) return;
    this.lastRead = Date.now();
    const kind = f.frame;
    if (!this.welcomed && kind !== 'welcome') {
      return fatal(`stream ${this.n}: first frame is ${kind}, want welcome`);
    }
    switch (kind) {
      case 'welcome':
        return this.onWelcome(f.welcome);
      case 'ping':
        // Answer at once, echoing id and sent_at, so the server can measure
        // the round trip without keeping state.
        this.write({ pong: { id: f.ping.id, sentAt: f.ping.sentAt } });
        return emit('pong', { id: f.ping.id });
      case 'pong': {
        const sent = this.pings.get(f.pong.id);
        if (sent === undefined) return fatal(`pong ${f.pong.id} answers no ping of ours`);
        this.pings.delete(f.pong.id);
        return emit('pong-received', { id: f.pong.id, rttMs: Date.now() - timestampMs(f.pong.sentAt) });
      }
      case 'message':
        return this.onMessage(f.message);
      case 'ack':
        // We send no messages, so the server has nothing to acknowledge.
        return fatal(`server acked client seq ${f.ack.seq}, but we sent no messages`);
      case 'goAway':
        this.goAway = f.goAway;
        return emit('goaway', {
          reason: f.goAway.reason,
          message: f.goAway.message,
          retryAfterMs: durationMs(f.goAway.retryAfter),
          retryJitterMs: durationMs(f.goAway.retryJitter),
        });
      case 'error':
        return fatal(`server error frame: code ${f.error.code}: ${f.error.message} (seq ${f.error.seq})`);
      default:
        return fatal(`stream ${this.n}: unknown or empty frame ${JSON.stringify(f)}`);
    }
  }

  onWelcome(w) {
    if (this.welcomed) return fatal(`stream ${this.n}: a second welcome`);
    this.welcomed = true;
    failures = 0;
    if (this.resuming) {
      if (w.sessionId !== sessionId) {
        return fatal(`resume of ${sessionId} answered with session ${w.sessionId} (resumed=${w.resumed}, ${w.resumeStatus}): the session is lost`);
      }
      if (!w.resumed || w.resumeStatus !== 'RESUME_STATUS_RESUMED') {
        return fatal(`resume answered with resumed=${w.resumed}, ${w.resumeStatus}${w.lost ? ` lost ${w.lost.first}..${w.lost.last}` : ''}; want RESUME_STATUS_RESUMED`);
      }
    } else if (w.resumed || w.resumeStatus !== 'RESUME_STATUS_NOT_REQUESTED' || !w.sessionId) {
      return fatal(`fresh session answered with resumed=${w.resumed}, ${w.resumeStatus}, session "${w.sessionId}"`);
    }
    if (!w.resumeToken) return fatal('welcome carries no resume token');
    if (BigInt(w.lastSentSeq) < lastReceived) {
      return fatal(`welcome.lastSentSeq ${w.lastSentSeq} is below what we already received (${lastReceived})`);
    }
    sessionId = w.sessionId;
    resumeToken = w.resumeToken; // rotated: the previous one no longer works
    // After a resume the server trims its log to what we said we received.
    if (lastReceived > lastAcked) lastAcked = lastReceived;

    this.interval = durationMs(w.heartbeatInterval) || heartbeatMs;
    // Welcome gives interval × misses; the server adds a grace it does not
    // announce, so we allow one more interval.
    this.deadAfter = this.interval * ((w.heartbeatMisses || 3) + 1);
    this.beat = setInterval(() => this.tick(), Math.max(25, Math.min(250, this.interval / 4)));

    emit('welcome', {
      stream: this.n,
      sessionId: w.sessionId,
      resumed: w.resumed,
      resumeStatus: w.resumeStatus,
      serverId: w.serverId,
      heartbeatIntervalMs: this.interval,
      heartbeatMisses: w.heartbeatMisses,
      keepaliveMinTimeMs: durationMs(w.keepaliveMinTime),
      resumeWindowMs: durationMs(w.resumeWindow),
      lastSentSeq: w.lastSentSeq,
      lastReceivedSeq: w.lastReceivedSeq,
      topics: w.topics,
      limits: w.limits,
    });
  }

  onMessage(m) {
    const seq = BigInt(m.seq);
    if (seq <= lastReceived) {
      // Already delivered (a re-send after a resume): drop, but re-ack so
      // the server can trim.
      emit('duplicate', { seq: m.seq });
      this.scheduleAck();
      return;
    }
    if (seq !== lastReceived + 1n) {
      return fatal(`message seq ${seq} skips ahead: expected ${lastReceived + 1n}`);
    }
    lastReceived = seq;
    delivered++;
    emit('message', {
      seq: m.seq,
      payload: m.payload.toString('utf8'),
      topic: m.topic,
      contentType: m.contentType,
      publishedAt: m.publishedAt ? timestampMs(m.publishedAt) : null,
    });
    if (delivered >= want) return this.finish();
    this.scheduleAck();
  }

  // scheduleAck batches acks: at once after 8 unacked messages, else within 20ms.
  scheduleAck() {
    if (lastReceived - lastAcked >= 8n) return this.sendAck();
    if (!this.ackTimer) this.ackTimer = setTimeout(() => this.sendAck(), 20);
  }

  sendAck() {
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (lastReceived <= lastAcked || this.ended) return;
    lastAcked = lastReceived;
    this.write({ ack: { seq: lastAcked.toString() } });
    emit('ack', { seq: lastAcked.toString() });
  }

  // finish acks everything, closes the session for good and waits for the
  // server to end the stream with OK.
  finish() {
    this.sendAck();
    closing = true;
    this.write({ close: { reason: `received ${delivered} messages` } });
    emit('close', { delivered });
    setTimeout(() => fatal('the server did not end the stream within 5s of our close'), 5000).unref();
  }

  // tick runs the client side of the heartbeat: ping when write-idle for an
  // interval; declare the server dead after deadAfter of silence.
  tick() {
    if (this.ended) return;
    const now = Date.now();
    if (now - this.lastRead >= this.deadAfter) {
      emit('dead-peer', { stream: this.n, silentMs: now - this.lastRead });
      this.ended = true; // our cancel is a break, not a close
      this.call.cancel();
      return this.broken({ code: grpc.status.DEADLINE_EXCEEDED, details: 'client-side heartbeat timeout' });
    }
    if (now - this.lastWrite >= this.interval) {
      const id = (++this.pingId).toString();
      this.pings.set(id, now);
      this.write({ ping: { id, sentAt: timestampNow() } });
      emit('ping-sent', { id });
    }
  }

  onEnd(s) {
    if (this.ended || finished) {
      return;
    }
    this.ended = true;
    if (closing) {
      this.stop();
      if (s.code !== grpc.status.OK) return fatal(`our close was answered with ${s.code} ${s.details}; want OK`);
      emit('closed', { delivered });
      return exit(0);
    }
    this.broken(s);
  }

  broken(s) {
    this.stop();
    const goAway = this.goAway;
    emit('disconnected', { stream: this.n, code: s.code, details: s.details, goAway: goAway ? goAway.reason : null });
    if (s.code !== grpc.status.OK && !RETRYABLE.has(s.code)) {
      return fatal(`stream ${this.n} ended with ${grpc.status[s.code]} (${s.details}): the spec says do not reconnect`);
    }
    if (goAway && NO_RECONNECT.has(goAway.reason)) {
      return fatal(`stream ${this.n} ended after GoAway ${goAway.reason} (${goAway.message}): do not reconnect`);
    }
    reconnect(goAway, this.welcomed);
  }
}

// reconnect opens the next stream after a delay: GoAway's retry_after plus
// jitter when the server gave one, else our own backoff.
function reconnect(goAway, hadWelcome) {
  if (!hadWelcome) failures++;
  let delay = reconnectDelayMs * 2 ** Math.min(failures, 3);
  if (goAway) {
    delay = durationMs(goAway.retryAfter) + Math.random() * durationMs(goAway.retryJitter);
  }
  emit('reconnecting', { inMs: Math.round(delay), failures });
  setTimeout(() => {
    if (!finished) cur = new Stream();
  }, delay);
}

process.on('SIGTERM', () => fatal('terminated'));
cur = new Stream();
