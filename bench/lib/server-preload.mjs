// Preloaded (`node --expose-gc --import ./bench/lib/server-preload.mjs ...`) into every
// server under test, the same way for all three. It only answers the
// orchestrator over the IPC channel; it never touches the server's code:
//   {op:'mem'}  -> two full GCs with a pause, then process.memoryUsage() and cpuUsage()
//   {op:'exit'} -> process.exit(0), so that --cpu-prof writes its profile
if (typeof process.send === 'function') {
  process.on('message', (msg) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.op === 'mem') {
      if (typeof globalThis.gc === 'function') globalThis.gc();
      setTimeout(() => {
        if (typeof globalThis.gc === 'function') globalThis.gc();
        setTimeout(() => {
          process.send({ op: 'mem', reqId: msg.reqId, mem: process.memoryUsage(), cpu: process.cpuUsage() });
        }, 200);
      }, 300);
    } else if (msg.op === 'exit') {
      process.exit(0);
    }
  });
  // The channel must not keep a server alive on its own, nor count as work.
  process.channel?.unref();
}
