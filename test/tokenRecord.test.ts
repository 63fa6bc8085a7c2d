// The one time model (src/auth/tokenRecord.ts): every source normalised into millisecond moments, skew for every
// token, lifetimes and expiries clamped together, the stale point at the middle of the usable lifetime.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { recordFromEndpoint, recordFromInput, recordState, rememberExactTimes, type TimePolicy } from '../src/auth/tokenRecord.js';
import type { OAuthToken } from '../src/token.js';

const NOW = 1_800_000_000_000; // ms, a whole second
const NOW_S = NOW / 1000;
const base: TimePolicy = { defaultLifetime: 300, maxLifetime: 31_536_000, clockSkew: 0, refreshAhead: undefined };
const policy = (over: Partial<TimePolicy> = {}): TimePolicy => ({ ...base, ...over });
const token = (lifetime: number, extra: Partial<OAuthToken> = {}): OAuthToken => ({ accessToken: 'a', tokenType: 'Bearer', expiresIn: lifetime, expiry: NOW_S + lifetime, ...extra });

describe('the stale point', () => {
  test('default: the middle of the usable lifetime (30 s for a 60 s token, 12 h for a 24 h token)', () => {
    const a = recordFromInput(token(60), NOW, policy(), 'provider', 't');
    assert.equal(a.staleAtMs, NOW + 30_000);
    assert.equal(a.expiresAtMs, NOW + 60_000);
    assert.equal(recordFromInput(token(86_400), NOW, policy(), 'provider', 't').staleAtMs, NOW + 43_200_000);
  });

  test('the endpoint: exact milliseconds from the send time, never the rounded expiry', () => {
    const sentAt = NOW + 999; // expiry rounds down by almost a second
    const t = { accessToken: 'a', tokenType: 'Bearer', expiresIn: 4, expiry: Math.floor(sentAt / 1000 + 4) };
    const r = recordFromEndpoint(t, sentAt, policy());
    assert.equal(r.expiresAtMs, sentAt + 4_000);
    assert.equal(r.staleAtMs, sentAt + 2_000);
    assert.equal(r.token.expiry, NOW_S + 4, 'the public expiry stays whole seconds');
  });

  test('a token from the endpoint that comes back through a provider keeps its exact times', () => {
    const sentAt = NOW + 999;
    const t: OAuthToken = { accessToken: 'a', tokenType: 'Bearer', expiresIn: 4, expiry: Math.floor(sentAt / 1000 + 4) };
    rememberExactTimes(t, sentAt);
    const r = recordFromInput(t, sentAt + 10, policy(), 'provider', 't');
    assert.equal(r.expiresAtMs, sentAt + 4_000);
    assert.equal(r.staleAtMs, sentAt + 2_000);
  });

  test('refreshAhead can only make it later than the middle; a server refresh_in only earlier', () => {
    assert.equal(recordFromInput(token(60), NOW, policy({ refreshAhead: 10 }), 'manual', 't').staleAtMs, NOW + 50_000);
    assert.equal(recordFromInput(token(60), NOW, policy({ refreshAhead: 300 }), 'manual', 't').staleAtMs, NOW + 30_000);
    assert.equal(recordFromInput(token(60), NOW, policy({ refreshAhead: 0 }), 'manual', 't').staleAtMs, NOW + 60_000);
    assert.equal(recordFromInput(token(60, { refreshIn: 10 }), NOW, policy(), 'manual', 't').staleAtMs, NOW + 10_000);
    assert.equal(recordFromInput(token(60, { refreshIn: 50 }), NOW, policy(), 'manual', 't').staleAtMs, NOW + 30_000);
  });

  test('state boundaries: fresh before staleAtMs, stale from it, expired from expiresAtMs', () => {
    const r = recordFromInput(token(60), NOW, policy(), 'manual', 't');
    assert.equal(recordState(r, NOW + 29_999), 'fresh');
    assert.equal(recordState(r, NOW + 30_000), 'stale');
    assert.equal(recordState(r, NOW + 59_999), 'stale');
    assert.equal(recordState(r, NOW + 60_000), 'expired');
  });
});

describe('clock skew applies to every token', () => {
  test('only expiry known: the skew applies as configured (expiry in 30 s, skew 60 s: expired)', () => {
    const r = recordFromInput({ accessToken: 'a', tokenType: 'Bearer', expiry: NOW_S + 30 }, NOW, policy({ clockSkew: 60 }), 'provider', 't');
    assert.equal(recordState(r, NOW), 'expired');
    const s = recordFromInput({ accessToken: 'a', tokenType: 'Bearer', expiry: NOW_S + 100 }, NOW, policy({ clockSkew: 60 }), 'store', 't');
    assert.equal(s.expiresAtMs, NOW + 40_000);
  });

  test('lifetime known: the skew is clamped to half of it, so it never makes a token expired at birth', () => {
    const r = recordFromInput(token(60), NOW, policy({ clockSkew: 20 }), 'manual', 't');
    assert.equal(r.expiresAtMs, NOW + 40_000);
    assert.equal(r.staleAtMs, NOW + 20_000);
    assert.equal(recordFromInput(token(60), NOW, policy({ clockSkew: 3600 }), 'manual', 't').expiresAtMs, NOW + 30_000);
  });
});

describe('clamps', () => {
  test('expiresIn and expiry are clamped together to maxTokenLifetime: no token stale at birth', () => {
    const p = policy({ maxLifetime: 3600 });
    const r = recordFromInput({ accessToken: 'a', tokenType: 'Bearer', expiresIn: 86_400 }, NOW, p, 'provider', 't');
    assert.equal(r.token.expiresIn, 3600);
    assert.equal(r.expiresAtMs, NOW + 3_600_000);
    assert.equal(recordState(r, NOW), 'fresh');
    const both = recordFromInput({ accessToken: 'a', tokenType: 'Bearer', expiresIn: 86_400, expiry: NOW_S + 86_400 }, NOW, p, 'provider', 't');
    assert.equal(both.expiresAtMs, NOW + 3_600_000);
    assert.equal(recordState(both, NOW), 'fresh');
  });

  test('an expiry given in milliseconds by mistake is read as milliseconds', () => {
    const r = recordFromInput({ accessToken: 'a', tokenType: 'Bearer', expiry: NOW + 60_000 }, NOW, policy(), 'provider', 't');
    assert.equal(r.expiresAtMs, NOW + 60_000);
  });

  test('a planted far-future expiry is clamped to maxTokenLifetime', () => {
    const r = recordFromInput({ accessToken: 'a', tokenType: 'Bearer', expiry: 9e10 }, NOW, policy({ maxLifetime: 3600 }), 'store', 't');
    assert.equal(r.expiresAtMs, NOW + 3_600_000);
  });

  test('a stored token keeps the issue time it had (expiry − expiresIn), so its stale point is not postponed', () => {
    const stored = { accessToken: 'a', tokenType: 'Bearer', expiresIn: 60, expiry: NOW_S + 20 }; // issued 40 s ago
    const r = recordFromInput(stored, NOW, policy(), 'store', 't');
    assert.equal(r.issuedAtMs, NOW - 40_000);
    assert.equal(recordState(r, NOW), 'stale');
  });
});
