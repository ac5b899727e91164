import assert from 'node:assert/strict';
import { AVAILABLE_TRAFFIC_PROVIDERS, TRAFFIC_PROVIDERS } from '../../src/config/release-config.js';
import { PROVIDERS } from '../../src/traffic/index.js';

describe('traffic provider registry', () => {
  it('implements exactly the providers src/config calls available (what admission accepts)', () => {
    assert.deepEqual(Object.keys(PROVIDERS).sort(), [...AVAILABLE_TRAFFIC_PROVIDERS].sort());
  });

  it('knows every available provider by name', () => {
    for (const p of AVAILABLE_TRAFFIC_PROVIDERS) assert.ok((TRAFFIC_PROVIDERS as readonly string[]).includes(p), p);
  });
});
