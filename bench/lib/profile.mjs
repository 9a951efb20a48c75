// Reads a V8 .cpuprofile (from `node --cpu-prof`) and ranks functions by self
// time and by total (inclusive) time, optionally only over a time window
// given in CLOCK_MONOTONIC microseconds (what process.hrtime gives; V8's
// profile timestamps use the same clock on Linux).
import fs from 'node:fs';
import path from 'node:path';

function shortUrl(url, root) {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  if (root && u.startsWith(root)) u = u.slice(root.length + 1);
  const nm = u.lastIndexOf('node_modules/');
  if (nm !== -1) u = u.slice(nm + 'node_modules/'.length);
  return u;
}

/** Package or area a frame belongs to: `ws`, `@nestjs/core`, `libs/streaming/...`, `node:internal`, ... */
function areaOf(url) {
  if (!url) return '(native/V8)';
  if (url.startsWith('node:')) return 'node: ' + url.slice(5).split('/').slice(0, 2).join('/');
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const parts = u.slice(nm + 13).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const m = /dist\/(libs\/streaming\/src\/[^/]+|apps\/[^/]+)/.exec(u);
  return m ? m[1] : path.basename(u);
}

export function analyzeProfile(file, { fromUs, toUs, root, top = 25 } = {}) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map();
  for (const n of prof.nodes) byId.set(n.id, n);
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const keyOf = (n) => {
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    if (!cf.url) return name;
    return `${name}  ${shortUrl(cf.url, root)}:${cf.lineNumber + 1}`;
  };

  const self = new Map();
  const total = new Map();
  const areas = new Map();
  const sorted = [...prof.timeDeltas].sort((x, y) => x - y);
  const interval = sorted[Math.floor(sorted.length / 2)] || 1000; // median delta ≈ the sampling interval
  let t = prof.startTime;
  let inWindow = 0;
  let allSamples = 0;
  const lo = fromUs ?? -Infinity;
  const hi = toUs ?? Infinity;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    allSamples++;
    if (t < lo || t > hi) continue;
    // Every sample counts the same (one sampling interval of CPU). Weighting by the gap to
    // the next sample would charge whole scheduling gaps (the process was descheduled,
    // so was the sampler) to whatever function happened to run before them.
    const w = interval;
    inWindow += w;
    const node = byId.get(prof.samples[i]);
    const k = keyOf(node);
    self.set(k, (self.get(k) ?? 0) + w);
    const area = node.callFrame.url ? areaOf(node.callFrame.url) : node.callFrame.functionName || '(native)';
    areas.set(area, (areas.get(area) ?? 0) + w);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const kk = keyOf(byId.get(id));
      if (seen.has(kk) || kk === '(root)') continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + w);
    }
  }
  const rank = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({
        name,
        ms: +(us / 1000).toFixed(1),
        pct: inWindow ? +((100 * us) / inWindow).toFixed(1) : 0,
      }));
  return {
    file,
    windowMs: +(inWindow / 1000).toFixed(1),
    samplesInWindow: Math.round(inWindow / interval),
    intervalUs: interval,
    samples: allSamples,
    profileStartUs: prof.startTime,
    profileEndUs: prof.endTime,
    self: rank(self),
    total: rank(total),
    areas: rank(areas),
  };
}
