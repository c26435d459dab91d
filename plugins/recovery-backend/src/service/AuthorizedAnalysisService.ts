import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { recoveryAnalysisCreatePermission } from '@backstage-recovery/plugin-recovery-common';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import type { AnalysisService, SystemAnalysis } from './AnalysisService';
import type { RecoveryAuthorizer } from './RecoveryAuthorizer';

/**
 * Dependency analyses as a caller may start and read them: AnalysisService with the caller's view of the
 * catalog and grants (recovery.analysis.create on each system analysed). The HTTP API and the
 * scheduler's tasks both analyse through it.
 */
export class AuthorizedAnalysisService {
  constructor(
    private readonly analyses: Pick<
      AnalysisService,
      'analyzeSystem' | 'sweep' | 'latestFor' | 'asSeenBy'
    >,
    private readonly authorizer: Pick<
      RecoveryAuthorizer,
      'authorizeOn' | 'permittedOn'
    >,
    private readonly graphs: Pick<CatalogGraphLoader, 'requireVisible'>,
  ) {}

  /** Analyses a system the caller may see (else a 404, as if absent) and may analyse. */
  async analyze(
    credentials: BackstageCredentials,
    systemRef: string,
  ): Promise<SystemAnalysis> {
    await this.graphs.requireVisible(systemRef, credentials);
    await this.authorizer.authorizeOn(
      credentials,
      recoveryAnalysisCreatePermission,
      systemRef,
    );
    return this.analyses.analyzeSystem(systemRef);
  }

  /** A system's latest analysis, without the parts the catalog hides from the caller. */
  latest(
    credentials: BackstageCredentials,
    systemRef: string,
  ): Promise<SystemAnalysis | undefined> {
    return this.analyses.latestFor(systemRef, credentials);
  }

  /**
   * An analysis `analyze` made (with the plugin's own credentials), without the parts the catalog
   * hides from the caller.
   */
  asSeenBy(
    credentials: BackstageCredentials,
    analysis: SystemAnalysis,
  ): Promise<SystemAnalysis> {
    return this.analyses.asSeenBy(analysis, credentials);
  }

  /** AnalysisService.sweep of every system the caller may analyse. */
  sweep(credentials: BackstageCredentials) {
    return this.analyses.sweep(credentials, refs =>
      this.authorizer.permittedOn(
        credentials,
        recoveryAnalysisCreatePermission,
        refs,
      ),
    );
  }
}
