/**
 * Docs as tests: every TypeScript block of README.md and docs/*.md is type-checked as a consumer of the package sees
 * it (the package's own name, resolved through its `exports` to the built types; `strict`,
 * `exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`), and the blocks marked runnable run in a child process
 * against oidc-provider and an API on 127.0.0.1. How to mark a block: test/helpers/docBlocks.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { promisify } from 'node:util';
import ts from 'typescript';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { docBlocks, docBlocksOf, MARKER_HELP, type DocBlock } from './helpers/docBlocks.js';
import { startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { closeServer, listenLocal, readBody } from './helpers/http.js';

const root = new URL('../../', import.meta.url).pathname;
const DOC_FILES = ['README.md', ...readdirSync(`${root}docs`).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** The strict consumer of test/package.test.ts (its `nodenext-node` case): Node's types, no DOM library. */
const CONSUMER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  skipLibCheck: true,
  noEmit: true,
};

/** A consumer with the DOM library as well (a tsconfig without `lib`): its global `ReadableStream`, `Response`… are the DOM's. */
const DOM_CONSUMER_OPTIONS: ts.CompilerOptions = { ...CONSUMER_OPTIONS, lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'] };

/** Where a block lives as a module: inside the repository, so that `oauth-client-credentials` resolves to this package. */
const moduleName = (block: DocBlock, ext: string): string => `${block.file.replace(/[/.]/g, '_')}_${block.line}${ext}`;
const moduleSource = (block: DocBlock): string => `${block.given}\n${block.code}\nexport {};\n`;

/** The Markdown line of a diagnostic at 0-based `line` of the block's module (line 0 is the `given` prelude). */
const markdownLine = (block: DocBlock, line: number): number => (line === 0 ? block.line - 1 : block.line + line);

/** Type errors of `blocks`, each as `file:line: TSnnnn message`. */
function typeErrors(blocks: readonly DocBlock[], options: ts.CompilerOptions = CONSUMER_OPTIONS): string[] {
  const dir = `${root}docs/.doc-test/`;
  const sources = new Map(blocks.map((b) => [`${dir}${moduleName(b, '.ts')}`, b]));
  const host = ts.createCompilerHost(options);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = (name) => sources.has(name) || fileExists(name);
  host.readFile = (name) => (sources.has(name) ? moduleSource(sources.get(name)!) : readFile(name));
  host.getSourceFile = (name, version, onError, create) => {
    const block = sources.get(name);
    return block ? ts.createSourceFile(name, moduleSource(block), version, true) : getSourceFile(name, version, onError, create);
  };
  const program = ts.createProgram([...sources.keys()], options, host);
  const errors: string[] = [];
  for (const [name, block] of sources) {
    const source = program.getSourceFile(name)!;
    for (const d of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
      const line = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line;
      errors.push(`${block.file}:${markdownLine(block, line)}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
    }
  }
  return errors;
}

describe('the extractor', () => {
  test('finds ts blocks, indented ones included, with their fence line and markers', () => {
    const text = [
      '# t', '', '```ts', 'const a = 1;', '```', '', '<!-- doc-test: fragment -->', '```typescript', 'a;', '```',
      '- item', '', '  <!-- doc-test: given declare const x: number; -->', '  <!-- doc-test: runnable -->', '  ```ts', '  x;', '  ```', '```sh', 'ls', '```',
    ].join('\n');
    const blocks = docBlocks('t.md', text);
    assert.deepEqual(blocks.map((b) => [b.line, b.code, b.fragment, b.runnable, b.given]), [
      [3, 'const a = 1;', false, false, ''],
      [8, 'a;', true, false, ''],
      [15, 'x;', false, true, 'declare const x: number;'],
    ]);
    assert.throws(() => docBlocks('t.md', '<!-- doc-test: fragmnet -->\n```ts\nx\n```'), /unknown doc-test marker `fragmnet` before line 2/);
  });

  test('a broken block is reported by file and Markdown line, and the message says how to mark a fragment', () => {
    const [block] = docBlocks('docs/x.md', 'text\n\n```ts\nconst a: number = 1;\nconst b: string = a;\n```\n');
    const errors = typeErrors([block!]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^docs\/x\.md:5: TS2322 /);
    assert.match(MARKER_HELP, /<!-- doc-test: fragment -->/);
  });
});

describe('the TypeScript blocks of README.md and docs/*.md', () => {
  const blocks = docBlocksOf(root, DOC_FILES);

  test('each one that is not marked a fragment compiles in a strict consumer', () => {
    assert.ok(blocks.length >= 20, `found ${blocks.length} blocks`);
    const errors = typeErrors(blocks.filter((b) => !b.fragment));
    assert.equal(errors.length, 0, `${errors.length} type errors in the docs:\n${errors.join('\n')}\n\n${MARKER_HELP}`);
  });

  test('each one that is not marked a fragment compiles in a strict consumer with the DOM library too', () => {
    const errors = typeErrors(blocks.filter((b) => !b.fragment), DOM_CONSUMER_OPTIONS);
    assert.equal(errors.length, 0, `${errors.length} type errors in the docs with lib DOM:\n${errors.join('\n')}\n\n${MARKER_HELP}`);
  });

  describe('the runnable ones run against oidc-provider and an API on 127.0.0.1', () => {
    let op: OidcProviderHandle;
    let api: http.Server;
    let apiUrl: string;
    const seen: { method: string; path: string; verified: boolean }[] = [];

    before(async () => {
      op = await startOidcProvider();
      const jwks = createRemoteJWKSet(new URL(op.jwksUrl));
      // Any method and path; 200 with JSON when the bearer token is one oidc-provider signed, 401 otherwise.
      api = http.createServer((req, res) => {
        void (async () => {
          await readBody(req);
          const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
          const verified = token !== undefined && (await jwtVerify(token, jwks, { issuer: op.issuer }).then(() => true, () => false));
          seen.push({ method: req.method ?? '', path: req.url ?? '', verified });
          res.writeHead(verified ? 200 : 401, { 'content-type': 'application/json' });
          res.end(JSON.stringify(verified ? { items: ['a', 'b'] } : { error: 'invalid_token' }));
        })();
      });
      apiUrl = await listenLocal(api);
    });
    after(async () => {
      await closeServer(api);
      await op.close();
    });

    const runnable = blocks.filter((b) => b.runnable);
    test('there are runnable blocks', () => assert.ok(runnable.length >= 1));
    for (const block of runnable) {
      test(`${block.file}:${block.line}`, async () => {
        const js = ts.transpileModule(moduleSource(block), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
          .replaceAll('https://auth.example.com/oauth2/token', op.tokenUrl)
          .replaceAll('https://auth.example.com', op.issuer)
          .replaceAll('https://api.example.com', apiUrl);
        const dir = `${root}dist/doc-test/`;
        mkdirSync(dir, { recursive: true });
        const file = `${dir}${moduleName(block, '.mjs')}`;
        writeFileSync(file, js);
        const before = seen.length;
        try {
          await promisify(execFile)(process.execPath, [file], { timeout: 60_000, env: { ...process.env, CLIENT_ID: 'svc', CLIENT_SECRET: 'svc-secret' } });
        } catch (error) {
          const e = error as { stderr?: string; message: string };
          assert.fail(`${block.file}:${block.line} failed when run: ${e.stderr || e.message}`);
        }
        const calls = seen.slice(before);
        assert.ok(calls.length > 0 && calls.every((c) => c.verified), `${block.file}:${block.line}: the API saw ${JSON.stringify(calls)}`);
      });
    }
  });
});
