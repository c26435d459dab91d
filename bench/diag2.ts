import { analyzeDependencies, transitiveClosure, generations } from '../plugins/recovery-node/src/analysis';
import { generateHistory } from './generate';
const [seed, machines, services, siteBoots, machineReboots, cascade] = process.argv.slice(2).map(Number);
const h = generateHistory({ seed, machines, services, siteBoots, machineReboots, cascade: Number.isNaN(cascade) ? undefined : cascade });
const r = analyzeDependencies(h.events, { map: h.map });
const names = h.truth.services.map(s => s.name);
const mOf = new Map(h.truth.services.map(s => [s.name, s.machine]));
const edges = h.truth.services.flatMap(s => s.dependsOn.map(d => ({ service: s.name, dependsOn: d })));
const closure = transitiveClosure(names, edges);
const mEdges = edges.map(e => ({ service: mOf.get(e.service)!, dependsOn: mOf.get(e.dependsOn)! })).filter(e => e.service !== e.dependsOn);
const mClosure = transitiveClosure(h.truth.machines, mEdges);
console.log('truth machine gens', generations(h.truth.machines, mEdges).map(g => g.join(',')).join(' | '));
console.log('our waves', r.waves.map(g => g.join(',')).join(' | '));
for (const md of r.machineDependencies) for (const w of md.waitsFor) if (!mClosure.has(`${md.machine}\u0000${w}`)) {
  // which service edges cause it
  const causes = r.dependencies.filter(d => mOf.get(d.service) === md.machine && mOf.get(d.dependsOn) === w);
  console.log('FALSE machine edge', md.machine, '<', w, causes.map(c => `${c.service}<${c.dependsOn} ${c.score} ${closure.has(`${c.service}\u0000${c.dependsOn}`) ? 'T' : 'N'}`).join('; '));
}
const wave = new Map<string, number>(); r.waves.forEach((w, i) => w.forEach(m => wave.set(m, i)));
for (const e of edges) { const a = mOf.get(e.service)!, b = mOf.get(e.dependsOn)!; if (a !== b && wave.get(b)! >= wave.get(a)!) console.log('VIOLATED', e.service, '<', e.dependsOn, a, b, r.correlation.matrix[r.correlation.services.indexOf(e.service)][r.correlation.services.indexOf(e.dependsOn)]); }
const rows: string[] = [];
const sup = new Map<string, number[]>();
for (const d of r.dependencies) { const a = mOf.get(d.service)!, b = mOf.get(d.dependsOn)!; if (a === b) continue; const k = `${a}\u0000${b}`; if (!sup.has(k)) sup.set(k, []); sup.get(k)!.push(d.score); }
for (const [k, v] of sup) rows.push(`${mClosure.has(k) ? 'T' : 'F'} n=${v.length} max=${Math.max(...v).toFixed(2)}`);
console.log(rows.sort().join('\n'));
