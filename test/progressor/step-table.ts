/**
 * The table runner shared by the step() test files: each row is an Observation and a time,
 * plus what the decision must look like. The checks every row gets live here; a file adds its own.
 */
import assert from 'node:assert/strict';
import { step } from '../../src/progressor/step.js';
import type { Action, Observation, StepResult } from '../../src/progressor/types.js';
import { T0 } from './fixtures.js';

export type Decided = Extract<StepResult, { kind: 'decision' }>;
export const decided = (r: StepResult): Decided => {
  assert.equal(r.kind, 'decision', `expected a decision, got ${JSON.stringify(r)}`);
  return r as Decided;
};
export const types = (a: Action[]) => a.map((x) => x.type);
export const eventActions = (a: Action[]) => a.filter((x): x is Extract<Action, { type: 'emitEvent' }> => x.type === 'emitEvent');
export const written = (r: Decided) => (r.actions.find((a) => a.type === 'writeStatus') as Extract<Action, { type: 'writeStatus' }> | undefined)?.status;

export interface StepRow {
  name: string;
  o: Observation;
  at?: number;
  /** Expected StepResult shape: a need ('gates' rows name the gate). */
  need?: string;
  phase?: string;
  weight?: number;
  actions?: string[];
  /** Action types that must not appear. */
  absent?: string[];
}

/**
 * Runs step() for a row with the checks every row gets: the input is not mutated, the same
 * input gives the same answer, and the expected need, actions, phase and weight. Returns the
 * decision for the caller's own checks (undefined when the row expected a need).
 */
export function runRow(row: StepRow): Decided | undefined {
  const input = structuredClone(row.o);
  const r = step(row.o, row.at ?? T0);
  assert.deepEqual(row.o, input, 'step() must not mutate its input');
  // Same input, same answer: nothing hidden (clock, randomness) goes into a decision.
  assert.deepEqual(step(structuredClone(row.o), row.at ?? T0), r);
  if (row.need) {
    assert.equal(r.kind, 'need', JSON.stringify(r));
    const n = r as Extract<StepResult, { kind: 'need' }>;
    assert.equal(n.need === 'gates' ? n.gate : n.need, row.need);
    return undefined;
  }
  const d = decided(r);
  if (row.actions) assert.deepEqual(types(d.actions), row.actions);
  for (const a of row.absent ?? []) assert.ok(!types(d.actions).includes(a as Action['type']), `unexpected ${a}`);
  if (row.phase) assert.equal(d.status?.phase, row.phase);
  if (row.weight !== undefined) assert.equal(d.status?.weight, row.weight);
  return d;
}
