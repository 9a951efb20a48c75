// pipeline: one publisher writes BENCH_PIPELINE_REQUESTS send_message requests
// (each with an id) back to back, without waiting for acks (issue 10, failure 2).
// Every request should get exactly one ack (or error) and the connection should
// stay open: TCP is what slows a fast sender down.
import { messageContent, nowUs } from '../lib/client.mjs';
import { common, num } from '../lib/config.mjs';
import { cpuOf, nextPhaseId } from '../lib/phase.mjs';
import { f, mdTable, ratio, tallyText, x } from '../lib/report.mjs';
import { runEach, log, sleep, startServer } from '../lib/servers.mjs';
import { createRoom, login, openClient } from '../lib/setup.mjs';

const cfg = {
  requests: num('BENCH_PIPELINE_REQUESTS', 2000),
  timeoutMs: num('BENCH_PIPELINE_TIMEOUT_MS', 30000),
  payload: num('BENCH_PAYLOAD', 100),
  servers: common.servers,
};

async function one(kind) {
  const server = await startServer(kind, { name: `pipeline-${kind}` });
  log(`${server.label} (${kind}) on 127.0.0.1:${server.port}`);
  let publisher = null;
  try {
    const token = await login(kind, server.port, 'bench-publisher');
    const roomId = await createRoom(kind, server.port, token, 'bench');
    const id = nextPhaseId();
    let echoed = 0;
    publisher = await openClient(kind, server.port, token, (ph) => {
      if (ph === id) echoed++;
    });
    await publisher.join(roomId);
    await sleep(300);

    const n = cfg.requests;
    let acks = 0;
    let lost = 0; // rejected because the connection closed (or a request could not be written)
    let lastAnswerUs = null;
    let lastProgressAt = Date.now();
    const errors0 = publisher.errors;
    const answered = () => acks + (publisher.errors - errors0) + lost;
    const cpu0 = cpuOf([server.pid]);
    const t0 = nowUs();
    for (let seq = 1; seq <= n; seq++) {
      publisher
        .request('send_message', { room_id: roomId, content: messageContent(id, seq, cfg.payload) })
        .then(
          () => {
            acks++;
            lastAnswerUs = nowUs();
            lastProgressAt = Date.now();
          },
          (e) => {
            if (/^(closed|not open)/.test(e.message)) lost++;
            else lastAnswerUs = nowUs();
            lastProgressAt = Date.now();
          },
        );
    }
    const writtenUs = nowUs();
    const until = Date.now() + cfg.timeoutMs;
    while (answered() < n && publisher.isOpen && Date.now() < until && Date.now() - lastProgressAt < 10000)
      await sleep(20);
    await sleep(500); // a close that follows the last answer, and the last echoes
    const cpu1 = cpuOf([server.pid]);
    const errors = publisher.errors - errors0;
    const r = {
      kind,
      label: server.label,
      command: server.command,
      requests: n,
      acks,
      errors,
      error_codes: { ...publisher.errorCodes },
      unanswered: n - acks - errors,
      echoed,
      write_ms: (writtenUs - t0) / 1000,
      time_to_last_answer_ms: lastAnswerUs ? (lastAnswerUs - t0) / 1000 : null,
      close_code: publisher.closeCode,
      closed_after_ms: publisher.closedAtUs ? (publisher.closedAtUs - t0) / 1000 : null,
      survived: publisher.isOpen,
      server_cpu_ms: (cpu1.total - cpu0.total) / 1000,
    };
    log(`  ${describe(r)}`);
    return r;
  } finally {
    publisher?.close();
    await server.stop();
  }
}

function describe(r) {
  return (
    `${r.acks}/${r.requests} acked, ${r.errors} errors${r.errors ? ` (${tallyText(r.error_codes)})` : ''}, ${r.unanswered} unanswered, ` +
    `${r.echoed} own messages received, last answer after ${f(r.time_to_last_answer_ms, 0)} ms, ` +
    (r.survived
      ? 'connection open'
      : `connection closed ${r.close_code} after ${f(r.closed_after_ms, 0)} ms`) +
    `, server CPU ${r.server_cpu_ms.toFixed(0)} ms`
  );
}

const run = () => runEach(cfg, one);

function tableRows(data) {
  const by = Object.fromEntries(data.results.filter((r) => !r.error).map((r) => [r.kind, r]));
  const head = [
    'server',
    'acks',
    'errors',
    'unanswered',
    'own messages back',
    'time to last answer ms',
    'vs ws',
    'connection',
    'server CPU ms',
  ];
  const rows = data.results.map((r) =>
    r.error
      ? [r.label, `failed: ${r.error}`, '', '', '', '', '', '', '']
      : [
          r.label,
          `${r.acks}/${r.requests}`,
          r.errors ? `${r.errors} (${tallyText(r.error_codes)})` : '0',
          String(r.unanswered),
          String(r.echoed),
          f(r.time_to_last_answer_ms, 0),
          r.kind === 'ws-bare'
            ? '1'
            : x(ratio(r.time_to_last_answer_ms, by['ws-bare']?.time_to_last_answer_ms)),
          r.survived ? 'open' : `closed ${r.close_code} after ${f(r.closed_after_ms, 0)} ms`,
          f(r.server_cpu_ms, 0),
        ],
  );
  return [head, ...rows];
}

function render(data) {
  return [
    `One connection, a member of one room, writes ${data.config.requests} \`send_message\` requests with ids back to back ` +
      `(one WebSocket frame each, without waiting), then waits (at most ${data.config.timeoutMs / 1000} s) for an answer to each. ` +
      '"own messages back": the `message` events the publisher received for its own messages.',
    '',
    mdTable(tableRows(data)),
    '',
    ...data.results.filter((r) => !r.error).map((r) => `- **${r.label}**: \`${r.command}\``),
    '',
  ];
}

function targets(data) {
  const by = Object.fromEntries(data.results.filter((r) => !r.error).map((r) => [r.kind, r]));
  const cell = (r) =>
    r ? `${r.acks}/${r.requests} acks, ${r.survived ? 'open' : `closed ${r.close_code}`}` : undefined;
  const o = by.ours;
  return [
    {
      what: `pipelining publisher, ${data.config.requests} requests: acks, connection`,
      ws: cell(by['ws-bare']),
      socketio: cell(by.socketio),
      ours: cell(o),
      vs: o ? `${f(o.time_to_last_answer_ms, 0)} ms to the last ack` : 'n/a',
      target: 'every request acked, never refused, connection open',
      met: o ? o.acks === o.requests && o.survived : null,
    },
  ];
}

export default {
  id: 'pipeline',
  title: `Pipelining publisher: ${cfg.requests} requests back to back`,
  config: cfg,
  run,
  render,
  targets,
  summary: (data) => ({ rows: tableRows(data), notes: [] }),
};
