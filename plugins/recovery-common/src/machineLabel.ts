import {
  type CompoundEntityRef,
  parseEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';

/**
 * The machine a container's machine label (MACHINE_LABEL) names, as an entity ref in lower case
 * (the catalog compares refs without case): `web-01`, `resource:web-01` and
 * `Resource:default/Web-01` are all `resource:default/web-01`; a name alone is of the default
 * namespace. Undefined where the label names no Resource (another kind, or no ref at all). The one
 * reading of the label: the capture's check, event collection and the analysis all go by it.
 *
 * @public
 */
export function machineLabelRef(label: string): string | undefined {
  let ref: CompoundEntityRef;
  try {
    ref = parseEntityRef(label.trim(), {
      defaultKind: 'resource',
      defaultNamespace: 'default',
    });
  } catch {
    return undefined;
  }
  const lower = stringifyEntityRef(ref).toLocaleLowerCase('en-US');
  return lower.startsWith('resource:') ? lower : undefined;
}

/**
 * The machine name an event keeps of a machine label: a label in ref form (`resource:web-01`,
 * `Resource:default/web-01`, `ops/web-01`) as the ref it names (machineLabelRef), one spelling for
 * all of them; a name alone as it is, as a container's or a host's name (the analysis matches
 * names to the catalog's). A label in ref form that names no Resource stays as it is.
 *
 * @public
 */
export function machineLabelName(label: string): string {
  return /[:/]/.test(label) ? (machineLabelRef(label) ?? label) : label;
}
