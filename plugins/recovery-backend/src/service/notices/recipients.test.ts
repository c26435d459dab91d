import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { mockCredentials } from '@backstage/backend-test-utils';
import { groupEntity as group } from '../../testing/groups';
import {
  closingRecipients,
  groupsOf,
  isUserRef,
  ownsAll,
  recipientsOf,
  setKey,
  usersReached,
  whyNoOneReached,
} from './recipients';

const WEB = 'component:default/web';
const DB = 'component:default/database';
const TEAM_A = 'group:default/team-a';
const ALICE = 'user:default/alice';

describe('readiness notice recipients', () => {
  it('sends the notices closing alarms to those they reached alone, each once: not to the entities, which resolve to their owners now', () => {
    const told = {
      entityRef: WEB,
      owners: [TEAM_A, 'user:default/jane'],
      // jane owns it herself; the catalog writes refs in any case.
      users: [ALICE, 'user:default/jane', 'User:default/Bob'],
    };
    expect(closingRecipients([told])).toEqual({
      type: 'entity',
      entityRef: [TEAM_A, 'user:default/jane', ALICE, 'User:default/Bob'],
    });
    expect(
      closingRecipients([
        told,
        {
          entityRef: DB,
          owners: ['USER:default/alice'],
          users: ['user:default/alice'],
        },
      ]),
    ).toEqual({
      type: 'entity',
      entityRef: [TEAM_A, 'user:default/jane', ALICE, 'User:default/Bob'],
    });
    // A loss that reached no one (its owner then not in the catalog): its owners, whoever they resolve to now.
    expect(
      closingRecipients([{ entityRef: WEB, owners: [TEAM_A], users: [] }]),
    ).toEqual({ type: 'entity', entityRef: TEAM_A });
    // One told before users were kept went to the entity: the entity too.
    expect(closingRecipients([{ entityRef: WEB, owners: [TEAM_A] }])).toEqual({
      type: 'entity',
      entityRef: [WEB, TEAM_A],
    });
    expect(closingRecipients([{ entityRef: WEB }])).toEqual({
      type: 'entity',
      entityRef: WEB,
    });
  });

  it("finds the users a notice to owners reaches as the notifications plugin does: a user itself, a group's members and its sub-groups', however deep", () => {
    const groups = new Map(
      [
        group(
          TEAM_A,
          [ALICE, 'user:default/bob'],
          ['group:default/team-a-ops'],
        ),
        group(
          'group:default/team-a-ops',
          ['user:default/carol', ALICE],
          ['group:default/on-call'],
        ),
        // A cycle, and a member that is no user: neither loops nor counts.
        group(
          'group:default/on-call',
          ['user:default/dave', 'group:default/team-b'],
          [TEAM_A],
        ),
        group('group:default/team-b', ['user:default/erin']),
      ].map(g => [`group:default/${g.metadata.name}`, g]),
    );
    expect(usersReached([TEAM_A], groups)).toEqual([
      ALICE,
      'user:default/bob',
      'user:default/carol',
      'user:default/dave',
    ]);
    // A user who owns is reached whether or not the catalog holds them; refs in any case.
    expect(
      usersReached(['user:default/jane', 'Group:Default/Team-B'], groups),
    ).toEqual(['user:default/erin', 'user:default/jane']);
    // A group the catalog no longer holds reaches no one.
    expect(usersReached(['group:default/gone'], groups)).toEqual([]);
    expect(usersReached([], groups)).toEqual([]);
  });

  it('send to refs each once in any case, in their order; one alone as itself', () => {
    expect(recipientsOf([TEAM_A, ALICE, 'Group:default/Team-A'])).toEqual({
      type: 'entity',
      entityRef: [TEAM_A, ALICE],
    });
    expect(recipientsOf([WEB, 'COMPONENT:default/web'])).toEqual({
      type: 'entity',
      entityRef: WEB,
    });
    expect(setKey([ALICE, TEAM_A, 'User:default/Alice'])).toBe(
      setKey([TEAM_A, ALICE]),
    );
    expect(isUserRef('User:default/alice')).toBe(true);
    expect(isUserRef(TEAM_A)).toBe(false);
    expect(isUserRef('not a ref:')).toBe(false);
  });

  it("name another entity's run only to owners who all own it too", () => {
    expect(ownsAll([TEAM_A, ALICE], ['Group:default/team-a'])).toBe(true);
    expect(ownsAll([TEAM_A], [TEAM_A, ALICE])).toBe(false);
    // Told to no owner, it is told to no one who may see it.
    expect(ownsAll([TEAM_A], [])).toBe(false);
  });

  it("read the owners' groups and those under them, a level a request, and none for owners who are all users", async () => {
    const entities = [
      group(TEAM_A, [ALICE], ['group:default/ops']),
      group('group:default/ops', [], ['group:default/on-call']),
      group('group:default/on-call', ['user:default/dave']),
    ];
    const catalog = catalogServiceMock({ entities });
    const read = vi.spyOn(catalog, 'getEntitiesByRefs');
    const groups = await groupsOf(
      [ALICE, 'Group:default/Team-A', 'group:default/gone'],
      catalog,
      mockCredentials.service(),
    );
    expect([...groups.keys()].sort()).toEqual([
      'group:default/on-call',
      'group:default/ops',
      'group:default/team-a',
    ]);
    expect(read).toHaveBeenCalledTimes(3);
    expect(read.mock.calls[0][0].entityRefs).toEqual([
      'group:default/team-a',
      'group:default/gone',
    ]);
    expect(usersReached([TEAM_A], groups)).toEqual([
      ALICE,
      'user:default/dave',
    ]);
    read.mockClear();
    expect(
      (await groupsOf([ALICE], catalog, mockCredentials.service())).size,
    ).toBe(0);
    expect(read).not.toHaveBeenCalled();
  });

  it('say why an owner reaches no one', () => {
    const groups = new Map([[TEAM_A, group(TEAM_A, [])]]);
    expect(whyNoOneReached(TEAM_A, groups)).toBe(`${TEAM_A} with no members`);
    expect(whyNoOneReached('group:default/gone', groups)).toBe(
      'group:default/gone not in the catalog',
    );
    expect(whyNoOneReached(WEB, groups)).toBe(
      `${WEB} neither a user nor a group`,
    );
  });
});
