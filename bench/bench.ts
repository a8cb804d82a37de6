export interface Bench {
  name: string;
  summary: string;
  /** flags after `npm run bench --` that start with '-' are passed through */
  run(flags: string[]): Promise<void>;
}
