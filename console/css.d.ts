// esbuild bundles the stylesheets the console imports (local/console.ts).
declare module '*.css';
