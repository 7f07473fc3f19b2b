/**
 * The stack tooling (tools/stack/) for the `stack` tests: real backends on free 127.0.0.1 ports,
 * started exactly as `npm start` starts them. See tools/stack/index.ts for the API and an example.
 * @module
 */
export * from '../../tools/stack/index.ts';
