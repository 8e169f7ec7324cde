/**
 * The layer rule (ARCHITECTURE.md, DESIGN.md): imports go one way, downward,
 * and a layer is entered through its index.ts only. Checked in `npm test` by
 * test/layers.test.ts (which also proves the check fails on a violating tree).
 *
 * Layers, bottom to top: errors.ts, framing, xml, transports, channels,
 * profiles, the applications (scistream, flows, decade), ops, cli.
 */
const LAYERS = ['framing', 'xml', 'transports', 'channels', 'profiles', 'scistream', 'flows', 'decade', 'ops', 'cli'];
const RANK = { framing: 1, xml: 2, transports: 3, channels: 4, profiles: 5, scistream: 6, flows: 6, decade: 6, ops: 7, cli: 8 };

/** For each layer: no import of a layer ranked above it, nor of a sibling application. */
const upward = LAYERS.map((layer) => {
  const above = LAYERS.filter((l) => RANK[l] > RANK[layer] || (RANK[l] === RANK[layer] && l !== layer));
  return {
    name: `no-upward-from-${layer}`,
    comment: `${layer} must not import ${above.join(', ')} (lower layers never import upper ones)`,
    severity: 'error',
    from: { path: `^src/${layer}/` },
    to: { path: `^src/(${above.join('|')})/` },
  };
});

module.exports = {
  forbidden: [
    {
      name: 'cross-layer-through-index',
      comment: "a module of one layer imports another layer only through that layer's index.ts",
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'errors-at-the-bottom',
      comment: 'errors.ts imports nothing of the library',
      severity: 'error',
      from: { path: '^src/errors\\.ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'nothing-imports-the-root',
      comment: "src/index.ts is the package's entry, not a layer: no module of the library imports it",
      severity: 'error',
      from: { path: '^src/.+/' },
      to: { path: '^src/index\\.ts$' },
    },
    {
      name: 'resolvable',
      comment: 'every relative import resolves (an unresolved one would escape the rules above)',
      severity: 'error',
      from: {},
      // Packages are npm's business (an optional one may be absent until it is loaded).
      to: { couldNotResolve: true, path: '^[.]' },
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
