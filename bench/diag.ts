import { clockCorrector, compileServiceMap, createKernel, transitiveClosure, transitiveReduction } from '../plugins/recovery-node/src/analysis';
import { generateHistory } from './generate';
const seed = Number(process.argv[2] ?? 2);
const cascade = process.argv[3] ? Number(process.argv[3]) : undefined;
const h = generateHistory({ seed, machines: 20, services: 120, siteBoots: 40, machineReboots: 80, cascade });
const map = compileServiceMap(h.map);
const corr = clockCorrector(h.events);
const k = createKernel();
const W = 3_600_000, MIN = 60_000;
const starts = h.events.filter(e => e.type === 'start').map(e => ({ t: corr(e.machine, e.time), s: map(e.service) }));
const by = new Map<string, number[]>();
for (const x of starts) { if (!by.has(x.s)) by.set(x.s, []); by.get(x.s)!.push(x.t); }
for (const l of by.values()) l.sort((a, b) => a - b);
const names = h.truth.services.map(s => s.name);
const edges = h.truth.services.flatMap(s => s.dependsOn.map(d => ({ service: s.name, dependsOn: d })));
const closure = transitiveClosure(names, edges);
const direct = new Set(transitiveReduction(names, edges).map(e => `${e.service}\u0000${e.dependsOn}`));
const rows: string[] = [];
for (const a of names) for (const b of names) {
  if (a === b) continue;
  let co = 0, prec = 0, ker = 0; const ds: number[] = [];
  for (const t of by.get(a) ?? []) {
    const bt = by.get(b) ?? [];
    let any = false, p = false, best = 0;
    for (const u of bt) { if (u < t - W || u > t + W) continue; any = true; if (t - u >= MIN) { p = true; best = Math.max(best, k(t - u)); } }
    if (any) { co++; if (p) prec++; ker += best; let nd = Infinity; for (const u of bt) if (u >= t - W && u <= t + W && Math.abs(t-u) < Math.abs(nd)) nd = t - u; ds.push(nd / MIN); }
  }
  if (co < 5) continue;
  const key = `${a}\u0000${b}`;
  const label = direct.has(key) ? 'D' : closure.has(key) ? 'T' : 'N';
  ds.sort((x, y) => x - y); rows.push(`${label} ${(prec / co).toFixed(3)} ${(ker / co).toFixed(3)} ${co} ${ds[Math.floor(ds.length * 0.1)].toFixed(1)} ${ds[Math.floor(ds.length * 0.5)].toFixed(1)}`);
}
console.log(rows.join('\n'));
