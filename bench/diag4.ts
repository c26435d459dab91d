import { analyzeDependencies } from '../plugins/recovery-node/src/analysis';
import { generateHistory } from './generate';
const [seed, machines, services, siteBoots, machineReboots] = process.argv.slice(2, 7).map(Number);
const h = generateHistory({ seed, machines, services, siteBoots, machineReboots });
const r = analyzeDependencies(h.events, { map: h.map });
const pos = new Map(r.serviceOrder.map((s, i) => [s, i]));
const byM = new Map<string, string[]>();
for (const s of h.truth.services) { if (!byM.has(s.machine)) byM.set(s.machine, []); byM.get(s.machine)!.push(`${s.name}@${pos.get(s.name)}(${s.dependsOn.length})`); }
for (const [m, l] of [...byM].sort()) console.log(m, r.waves.findIndex(w => w.includes(m)), l.join(' '));
console.log(r.machineDependencies.filter(d => d.waitsFor.length).map(d => `${d.machine}<${d.waitsFor.join(',')}`).join('  '));
