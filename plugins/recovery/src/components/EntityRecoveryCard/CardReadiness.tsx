import type { Entity } from '@backstage/catalog-model';
import type { Readiness } from '@backstage-recovery/plugin-recovery-common';
import { CardNote, Section } from './cardLayout';
import { runModeName } from '../../utils/format';
import { NightlyCheckNote } from '../NightlyCheck';
import {
  BootPlanView,
  CaptureTable,
  DegradedFailoverNote,
  DependencyDisagreementsView,
  EntityProblems,
  LastRunSummary,
  NoMachines,
  ReadinessSummary,
} from './ReadinessSections';

/**
 * What the card says of the entity's readiness: its status and reasons, configuration problems,
 * captures vs RPO, the last run that counts vs RTO, its place in the boot plan, and where
 * declared and observed dependencies disagree.
 */
export const CardReadiness = ({
  readiness,
  entity,
}: {
  readiness: Readiness;
  entity: Entity;
}) => {
  const plan = readiness.plan;
  const hasMachines = !!plan && plan.machines.length > 0;
  const hasDisagreements =
    !!readiness.disagreements?.inferredNotDeclared.length ||
    !!readiness.disagreements?.declaredNotObserved.length;
  const capturesSection = (
    <Section title="Captures">
      <CaptureTable
        captures={readiness.captures}
        rpoSeconds={readiness.objectives.rpoSeconds}
      />
    </Section>
  );
  return (
    <>
      <ReadinessSummary readiness={readiness} />

      {readiness.problems.length > 0 && (
        <CardNote>
          <EntityProblems problems={readiness.problems} />
        </CardNote>
      )}

      {!plan ? (
        // No plan could be made (a dependency cycle, say): the reasons above say why; what was
        // captured still shows.
        readiness.captures.length > 0 && capturesSection
      ) : !hasMachines ? (
        <CardNote>
          <NoMachines kind={entity.kind} name={entity.metadata.name} />
        </CardNote>
      ) : (
        <>
          {capturesSection}
          {/* The last run that counts may be a failover: the title says which. */}
          <Section
            title={`Last ${runModeName(readiness.lastRun?.mode ?? 'test')}`}
          >
            <LastRunSummary
              run={readiness.lastRun}
              rtoSeconds={readiness.objectives.rtoSeconds}
              entityRef={readiness.entityRef}
            />
            {/* A kept failover: what of it is down now, not only how it went. */}
            <DegradedFailoverNote run={readiness.lastRun} />
            {/* Why last night's check did not test it, when it did not. */}
            <NightlyCheckNote nightlyCheck={readiness.nightlyCheck} />
          </Section>
          <Section title="Boot plan">
            <BootPlanView plan={plan} position={readiness.position} />
          </Section>
        </>
      )}

      {/* Shown with or without a plan: a dependency declared but never observed often
          explains the cycle that kept a plan from being made. */}
      {hasDisagreements && (
        <Section title="Declared vs observed dependencies">
          <DependencyDisagreementsView
            disagreements={readiness.disagreements}
          />
        </Section>
      )}
    </>
  );
};
