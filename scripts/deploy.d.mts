/** Types of deploy.mjs (the `npm run deploy` wrapper over `wrangler deploy`), for TypeScript callers. */

export declare const REPO_ROOT: string;
export declare const WRANGLER_CONFIG: string;
export declare const WRANGLER_BIN: string;
/** Exit code of a refusal. */
export declare const REFUSED: 2;

/** Thrown by planDeploy; `problems` names each missing thing. */
export declare class DeployRefused extends Error {
  constructor(problems: string[]);
  problems: string[];
}

export declare function parseArgs(argv: string[]): {
  env: string | undefined;
  dryRun: boolean;
  vars: Record<string, string>;
  passthrough: string[];
};

/** What is wrong with an OTLP endpoint a deployed Worker must reach, or undefined when fine. */
export declare function endpointProblem(endpoint: string | undefined): string | undefined;

/** The secrets an environment needs, from its vars. */
export declare function requiredSecrets(vars: Record<string, unknown>): string[];

export declare function readWranglerEnvironments(configPath: string): Promise<{
  names: string[];
  vars(env: string): Record<string, unknown>;
}>;

export declare function wranglerSecretList(env: string): Promise<string[]>;

export interface DeployPlan {
  env: string;
  dryRun: boolean;
  secretsChecked: boolean;
  requiredSecrets: string[];
  wranglerArgs: string[];
}

export declare function planDeploy(options: {
  argv: string[];
  configPath?: string;
  listSecrets?: (env: string) => Promise<string[]>;
}): Promise<DeployPlan>;

export declare function runWrangler(args: string[]): Promise<number>;

export declare function main(
  argv: string[],
  deps?: {
    configPath?: string;
    listSecrets?: (env: string) => Promise<string[]>;
    run?: (args: string[]) => Promise<number>;
    log?: (line: string) => void;
  },
): Promise<number>;
