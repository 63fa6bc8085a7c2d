/**
 * The seed's examples (test/types/seed-examples.ts): they type-check, every `@ts-expect-error` there marks a real
 * type error, and the Clients they build work against oidc-provider and a protected API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { OAuthToken } from '../src/index.js';
import { clientInitialization, customTokenProvider, tokenUpdateCallback } from './types/seed-examples.js';
import { bearerTokens, startStack, type Stack } from './helpers/fixtures.js';

/** The application functions the seed's examples call; declared in seed-examples.ts, provided here. */
interface SeedGlobals {
  saveTokenToDatabase?: (token: OAuthToken) => void;
  loadTokenFromDatabase?: () => OAuthToken | undefined;
}
const seedGlobals = globalThis as SeedGlobals;

describe('the seed examples run against real servers', () => {
  let stack: Stack;
  const database: OAuthToken[] = [];

  before(async () => {
    stack = await startStack({ clients: [{ client_id: 'OAuthClientId', client_secret: 'OAuthClientSecret' }] });
    seedGlobals.saveTokenToDatabase = (token) => {
      database.push(JSON.parse(JSON.stringify(token)) as OAuthToken);
    };
  });
  after(async () => {
    delete seedGlobals.saveTokenToDatabase;
    delete seedGlobals.loadTokenFromDatabase;
    await stack.close();
  });

  test('Client Initialization: the first call fetches a token, the next reuse it', async () => {
    const client = clientInitialization(stack.api.url, stack.op.tokenUrl);
    try {
      const before = stack.op.tokenRequests.length;
      const res = await client.get<{ client_id: string }>('/things');
      assert.equal(res.result.client_id, 'OAuthClientId');
      await client.get('/things');
      assert.equal(stack.op.tokenRequests.length - before, 1);
    } finally {
      await client.close();
    }
  });

  test('Adding OAuth Token Update Callback: the token is saved to the "database"', async () => {
    const client = tokenUpdateCallback(stack.api.url, stack.op.tokenUrl);
    try {
      await client.get('/things');
      await client.get('/things');
      assert.equal(database.length, 1);
      assert.equal(database[0]!.accessToken, bearerTokens(stack.api).at(-1));
    } finally {
      await client.close();
    }
  });

  test('Adding Custom OAuth Token Provider: a stored token is used with no fetch; without one, it fetches', async () => {
    assert.equal(database.length, 1, 'the previous test saved a token');
    seedGlobals.loadTokenFromDatabase = () => database[0];
    const before = stack.op.tokenRequests.length;
    const stored = customTokenProvider(stack.api.url, stack.op.tokenUrl);
    try {
      assert.equal((await stored.get('/things')).statusCode, 200);
      assert.equal(stack.op.tokenRequests.length, before, 'no token request');
      assert.equal(bearerTokens(stack.api).at(-1), database[0]!.accessToken);
    } finally {
      await stored.close();
    }

    seedGlobals.loadTokenFromDatabase = () => undefined;
    const empty = customTokenProvider(stack.api.url, stack.op.tokenUrl);
    try {
      assert.equal((await empty.get('/things')).statusCode, 200);
      assert.equal(stack.op.tokenRequests.length, before + 1, 'authManager.fetchToken() fetched one');
      assert.notEqual(bearerTokens(stack.api).at(-1), database[0]!.accessToken);
    } finally {
      await empty.close();
    }
  });
});

describe('type-level tests', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  for (const file of [`${root}test/types/seed-examples.ts`, `${root}test/types/provider-options.ts`]) describe(file.slice(root.length), () => {
    const DIRECTIVE = /^\s*\/\/ @ts-expect-error\b/;

    function compilerOptions(): ts.CompilerOptions {
      const config = ts.readConfigFile(`${root}tsconfig.json`, ts.sys.readFile);
      const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
      // The options of issue 19 are checked as a strict consumer sees them (exactOptionalPropertyTypes).
      return { ...parsed.options, noEmit: true, incremental: false, ...(file.endsWith('provider-options.ts') ? { strict: true, exactOptionalPropertyTypes: true } : {}) };
    }

    function errorsOf(program: ts.Program): ts.Diagnostic[] {
      const source = program.getSourceFile(file);
      assert.ok(source, `${file} is part of the program`);
      return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    }

    const describeAll = (diagnostics: readonly ts.Diagnostic[]): string =>
      diagnostics.map((d) => `${d.start !== undefined && d.file ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`).join('\n');

    test('it type-checks, so every @ts-expect-error in it met an error', () => {
      const program = ts.createProgram([file], compilerOptions());
      const diagnostics = errorsOf(program);
      assert.equal(diagnostics.length, 0, describeAll(diagnostics));
    });

    test('without the @ts-expect-error lines, each misuse is a type error on the line after its directive', () => {
      const text = ts.sys.readFile(file)!;
      const lines = text.split('\n');
      const expected = new Set<number>();
      lines.forEach((line, i) => {
        if (DIRECTIVE.test(line)) expected.add(i + 2); // 1-based line number of the next line
      });
      assert.ok(expected.size >= 5, `found ${expected.size} directives`);

      // Blank the directives (keeping line numbers) and compile the file from memory.
      const stripped = lines.map((line) => (DIRECTIVE.test(line) ? '' : line)).join('\n');
      const options = compilerOptions();
      const host = ts.createCompilerHost(options);
      const readFile = host.readFile.bind(host);
      host.readFile = (name) => (ts.sys.resolvePath(name) === ts.sys.resolvePath(file) ? stripped : readFile(name));
      const getSourceFile = host.getSourceFile.bind(host);
      host.getSourceFile = (name, languageVersion, onError, shouldCreate) =>
        ts.sys.resolvePath(name) === ts.sys.resolvePath(file) ? ts.createSourceFile(name, stripped, languageVersion, true) : getSourceFile(name, languageVersion, onError, shouldCreate);
      const diagnostics = errorsOf(ts.createProgram([file], options, host));

      const errorLines = new Set(diagnostics.map((d) => d.file!.getLineAndCharacterOfPosition(d.start!).line + 1));
      assert.deepEqual([...errorLines].sort((a, b) => a - b), [...expected].sort((a, b) => a - b), describeAll(diagnostics));
    });
  });
});
