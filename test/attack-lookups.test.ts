import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultDataFile, generateAttackLookups, type AttackData } from '../scripts/gen-attack.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function data(techniques: AttackData['techniques']): AttackData {
  return { source: 'MITRE ATT&CK Enterprise v9.9, test data', tactics: { TA0001: 'First', TA0002: 'Second' }, techniques };
}

function entries(out: Map<string, string>, name: string): Record<string, { id: string; name: string }> {
  const text = out.get(`transforms/lookups/${name}.json`);
  assert.ok(text, `no ${name} table generated`);
  return JSON.parse(text).entries;
}

describe('ATT&CK lookups (scripts/gen-attack.ts)', () => {
  it('map an id to the id and name of the same entry, and its first tactic', () => {
    const out = generateAttackLookups(data({ T1: { name: 'One', tactics: ['TA0002', 'TA0001'] }, 'T1.001': { name: 'Sub', tactics: ['TA0001'], parent: 'T1' } }));
    assert.deepEqual(entries(out, 'attack-technique'), { T1: { id: 'T1', name: 'One' }, 'T1.001': { id: 'T1.001', name: 'Sub' } });
    assert.deepEqual(entries(out, 'attack-tactic'), { T1: { id: 'TA0002', name: 'Second' }, 'T1.001': { id: 'TA0001', name: 'First' } });
  });

  it('map a revoked id to the end of its revokedBy chain, tactic included', () => {
    const out = generateAttackLookups(data({
      T3: { name: 'Old', tactics: ['TA0001'], status: 'revoked', revokedBy: 'T2' },
      T2: { name: 'Middle', tactics: ['TA0001'], status: 'revoked', revokedBy: 'T1' },
      T1: { name: 'Current', tactics: ['TA0002'] },
    }));
    assert.deepEqual(entries(out, 'attack-technique').T3, { id: 'T1', name: 'Current' });
    assert.deepEqual(entries(out, 'attack-tactic').T3, { id: 'TA0002', name: 'Second' });
  });

  it('keep keys sorted and match ids regardless of case', () => {
    const out = generateAttackLookups(data({ T2: { name: 'B', tactics: ['TA0001'] }, T1: { name: 'A', tactics: ['TA0001'] } }));
    const table = JSON.parse(out.get('transforms/lookups/attack-technique.json')!);
    assert.deepEqual(Object.keys(table.entries), ['T1', 'T2']);
    assert.equal(table.caseInsensitive, true);
    assert.match(table.description, /v9\.9/);
  });

  it('refuse data that would give wrong names: a cycle, an unknown replacement or tactic, no version', () => {
    assert.throws(() => generateAttackLookups(data({ T1: { name: 'A', tactics: ['TA0001'], revokedBy: 'T2' }, T2: { name: 'B', tactics: ['TA0001'], revokedBy: 'T1' } })), /cycle T1 → T2 → T1/);
    assert.throws(() => generateAttackLookups(data({ T1: { name: 'A', tactics: ['TA0001'], revokedBy: 'T9' } })), /\/techniques\/T1\/revokedBy names unknown technique T9/);
    assert.throws(() => generateAttackLookups(data({ T1: { name: 'A', tactics: ['TA0099'] } })), /unknown tactic TA0099/);
    assert.throws(() => generateAttackLookups(data({ T1: { name: 'A', tactics: [] } })), /\/techniques\/T1\/tactics is empty/);
    assert.throws(() => generateAttackLookups({ ...data({}), source: 'some table' }), /names no ATT&CK Enterprise version/);
  });

  describe('the committed tables', function () {
    before(function () {
      if (!existsSync(defaultDataFile)) {
        console.log(`      (skipped: no ATT&CK data at ${defaultDataFile})`);
        this.skip();
      }
    });

    it('are what the ATT&CK data generates (else: npm run gen:attack)', () => {
      const attack = JSON.parse(readFileSync(defaultDataFile, 'utf8')) as AttackData;
      for (const [rel, text] of generateAttackLookups(attack)) assert.equal(readFileSync(join(root, rel), 'utf8'), text, `${rel} is stale`);
    });

    it('name the release they came from in the alert transform', () => {
      const attack = JSON.parse(readFileSync(defaultDataFile, 'utf8')) as AttackData;
      const release = /ATT&CK Enterprise v[\d.]+/.exec(attack.source)![0];
      const alerts = JSON.parse(readFileSync(join(root, 'transforms', 'alerts.syslog.json'), 'utf8'));
      const rule = alerts.fields.find((f: { target: string }) => f.target === 'xdr_event.framework_version');
      assert.equal(rule?.const, release);
    });
  });
});
