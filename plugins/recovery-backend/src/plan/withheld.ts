import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { parseEntityRef } from '@backstage/catalog-model';
import type {
  EntityProblem,
  Readiness,
} from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { hiddenProblems } from '../service/RecoveryAuthorizer';
import type { CatalogGraphLoader } from './catalogGraph';
import { namingAny, refsInText } from './mentions';

/**
 * The entities of a plan's graph (and of texts about it) that the catalog holds and does not show
 * a caller, as the words that would name them: each one's ref, and a machine's name and container.
 */
export interface Withheld {
  /** None withheld: every answer goes as it is. */
  readonly none: boolean;
  /** The withheld entities a text names. */
  namedIn(text: string): string[];
}

/**
 * What of `graph` (its services and machines, and the refs `texts` name) the catalog withholds
 * from the caller (CatalogGraphLoader.seenAndWithheld: a ref it no longer holds is no one's secret).
 */
export async function withheldFrom(
  graphs: Pick<CatalogGraphLoader, 'seenAndWithheld'>,
  graph: Pick<RecoveryGraph, 'services' | 'machines'>,
  credentials: BackstageCredentials,
  texts: string[] = [],
): Promise<Withheld> {
  const inGraph = graphRefs([graph]);
  const refs = [...new Set([...inGraph, ...texts.flatMap(refsInText)])];
  const { withheld } = await graphs.seenAndWithheld(refs, credentials, inGraph);
  return withheldAmong(graph, new Set(withheld));
}

/** The entities of plans' graphs: the catalog held each as the plan read it. */
export function graphRefs(
  graphs: Array<Pick<RecoveryGraph, 'services' | 'machines'>>,
): Set<string> {
  return new Set(
    graphs.flatMap(g => [...g.services.keys(), ...g.machines.keys()]),
  );
}

/** Refs a caller may be withheld from in a plan's graph and its problems (for one batched look-up). */
export function refsOf(
  graph: Pick<RecoveryGraph, 'services' | 'machines' | 'problems'>,
): string[] {
  return [
    ...graph.services.keys(),
    ...graph.machines.keys(),
    ...graph.problems.flatMap(p => [p.entityRef, ...refsInText(p.message)]),
  ];
}

/** Withheld, of `graph`, as `withheld` (refs the catalog holds and does not show the caller) says. */
export function withheldAmong(
  graph: Pick<RecoveryGraph, 'machines'>,
  withheld: Set<string>,
): Withheld {
  const words = [...withheld].map(ref => {
    const machine = graph.machines.get(ref);
    return {
      ref,
      names: namingAny([
        ref,
        ...(machine ? [parseEntityRef(ref).name] : []),
        ...(machine?.locator ? [machine.locator.container] : []),
      ]),
    };
  });
  return {
    none: words.length === 0,
    namedIn: text => words.filter(w => w.names(text)).map(w => w.ref),
  };
}

/**
 * `texts` (a readiness's reasons, a refusal's lines) as the caller may read them: those naming a
 * withheld entity left out, one line counting those entities said where the first of them stood.
 * `at` maps each index kept to its new one (undefined: left out, or the counting line).
 */
export function textsSeen(
  texts: string[],
  withheld: Withheld,
  also: (index: number) => string[] = () => [],
): { texts: string[]; at: (index: number) => number | undefined } {
  if (withheld.none) return { texts, at: i => i };
  const hidden = new Set<string>();
  const kept: string[] = [];
  const moved = new Map<number, number>();
  let countedAt: number | undefined;
  texts.forEach((text, index) => {
    const named = [...withheld.namedIn(text), ...also(index)];
    if (named.length === 0) {
      moved.set(index, kept.push(text) - 1);
      return;
    }
    named.forEach(ref => hidden.add(ref));
    if (countedAt === undefined) countedAt = kept.push('') - 1;
  });
  if (countedAt !== undefined) kept[countedAt] = hiddenProblems(hidden.size);
  return { texts: kept, at: i => moved.get(i) };
}

/**
 * A plan's problems as the caller may read them: those of, or naming, an entity withheld from them
 * left out, one problem of the plan's root counting those entities in their place.
 */
export function problemsSeen(
  problems: EntityProblem[],
  rootRef: string,
  withheld: Withheld,
): EntityProblem[] {
  if (withheld.none) return problems;
  const isWithheld = (ref: string) => withheld.namedIn(ref).includes(ref);
  const { texts, at } = textsSeen(
    problems.map(p => p.message),
    withheld,
    i => (isWithheld(problems[i].entityRef) ? [problems[i].entityRef] : []),
  );
  return texts.map((message, index) => {
    const original = problems.findIndex((_, i) => at(i) === index);
    return original >= 0 ? problems[original] : { entityRef: rootRef, message };
  });
}

/**
 * A readiness as the caller may read it: its reasons and problems naming entities withheld from
 * them counted in their place (textsSeen, problemsSeen), each reason about a run still pointing at
 * its own; its verdict (status) the same, as what stands in the way stands there all the same.
 */
export function readinessSeen(
  readiness: Readiness,
  withheld: Withheld,
): Readiness {
  if (withheld.none) return readiness;
  const { texts: reasons, at } = textsSeen(readiness.reasons, withheld);
  const reasonRuns = (readiness.reasonRuns ?? []).flatMap(r => {
    const reason = at(r.reason);
    return reason === undefined ? [] : [{ ...r, reason }];
  });
  const seen: Readiness = {
    ...readiness,
    reasons,
    reasonRuns,
    problems: problemsSeen(readiness.problems, readiness.entityRef, withheld),
  };
  if (reasonRuns.length === 0) delete seen.reasonRuns;
  return seen;
}
