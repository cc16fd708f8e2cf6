// Types of build/package.mjs, for the suite that uses it.
export declare const SIZE_LIMIT: number;
export declare function pack(root: string, dir: string): string;
export declare function install(dir: string, tarball: string): void;
export declare function sizeOf(dir: string): number;
export declare function packagesIn(modules: string): string[];
