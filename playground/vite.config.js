// Builds the playground into dist/ (checked in: `cargo run` needs no Node). Fixed file
// names, because the server embeds them by name (src/http/playground.rs).
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import license from 'rollup-plugin-license';
import { defineConfig } from 'vite';

const here = import.meta.dirname;
const root = join(here, '..');

/** Every input of the bundle, as repository paths, sorted. The Rust test
 * `playground_dist_is_built_from_the_current_sources` hashes the same list. */
function inputs() {
  const files = (dir, pick) =>
    readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && pick(e.name))
      .map((e) => relative(root, join(e.parentPath, e.name)));
  return [
    'playground/index.html',
    'playground/package-lock.json',
    'playground/vite.config.js',
    ...files('playground/src', () => true),
    ...files('docs/spec/workloads', (n) => n.endsWith('.graphql')),
    ...files('tests/golden/answers', (n) => n === 'query.graphql' || n === 'variables.json'),
  ]
    .map((p) => p.split('\\').join('/'))
    .sort();
}

function sourceHash() {
  return {
    name: 'coachgraph-source-hash',
    closeBundle() {
      const h = createHash('sha256');
      for (const p of inputs()) {
        h.update(p + '\n');
        h.update(readFileSync(join(root, p)));
        h.update('\n');
      }
      writeFileSync(join(here, 'dist', 'SOURCE_HASH'), h.digest('hex') + '\n');
    },
  };
}

export default defineConfig({
  base: '/playground/',
  plugins: [sourceHash()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: false,
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/playground.js',
        chunkFileNames: 'assets/[name].js',
        assetFileNames: 'assets/playground[extname]',
      },
      plugins: [
        license({
          thirdParty: {
            includePrivate: false,
            output: { file: join(here, 'dist', 'THIRD_PARTY_LICENSES.txt') },
          },
        }),
      ],
    },
  },
});
