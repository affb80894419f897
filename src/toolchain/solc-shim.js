#!/usr/bin/env node
// nml's solc shim: runs the npm package `solc` (the compiler built to
// WebAssembly) behind the command line of the native `solc`, as far as tools
// that drive solc through standard JSON need it (foundry-compilers):
//
//   solc --version
//   solc [--base-path DIR] [--include-path DIR]... [--allow-paths DIR,...] --standard-json < input.json
//
// The stock `solcjs` CLI cannot stand in for solc: it prints a banner before
// the JSON, rejects `--allow-paths`, and calls process.exit() right after
// writing, which cuts stdout off at 64-128 KiB when it is a pipe. This shim
// writes the output and lets Node exit by itself once stdout has drained.
'use strict';

const fs = require('fs');
const path = require('path');

const HEADER = 'solc, the solidity compiler commandline interface';
const USAGE = 'usage: solc --version | solc [--base-path DIR] [--include-path DIR]... [--allow-paths DIR[,DIR...]] --standard-json';

function fail(message) {
  process.stderr.write(`Error: ${message}\n${USAGE}\n`);
  process.exitCode = 1;
}

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: '', includePaths: [], allowPaths: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const takeValue = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new Error(`option ${arg} needs a value`);
      i += 1;
      return argv[i];
    };
    switch (arg) {
      case '--version':
        opts.version = true;
        break;
      case '--help':
        opts.help = true;
        break;
      case '--standard-json':
        opts.standardJson = true;
        break;
      case '--base-path':
        opts.basePath = takeValue();
        break;
      case '--include-path':
        opts.includePaths.push(takeValue());
        break;
      case '--allow-paths':
        opts.allowPaths.push(...takeValue().split(',').filter((p) => p !== ''));
        break;
      default:
        throw new Error(`unsupported argument ${JSON.stringify(argv[i])} (this is nml's solc shim; it only speaks --standard-json)`);
    }
  }
  return opts;
}

// The installer records `solc.version()` beside the shim, so that `--version`
// (which foundry-compilers asks on every build) does not pay for loading the
// 8 MB compiler. The record is trusted only while it names the installed
// package's version.
function cachedVersion() {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', 'solc', 'package.json'), 'utf8'));
    const recorded = fs.readFileSync(path.join(__dirname, 'solc-version.txt'), 'utf8').trim();
    if (recorded.startsWith(`${pkg.version}+`)) return recorded;
  } catch (_) {
    // No record (first run, or a hand-made install): ask the compiler.
  }
  return null;
}

function loadSolc() {
  const before = new Set(process.listeners('uncaughtException'));
  const solc = require(path.join(__dirname, 'node_modules', 'solc'));
  // Emscripten installs a handler that turns every uncaught exception into
  // an abort with a confusing message; Node's own report is clearer.
  for (const listener of process.listeners('uncaughtException')) {
    if (!before.has(listener)) process.removeListener('uncaughtException', listener);
  }
  return solc;
}

function isInside(file, dir) {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realOrResolved(p) {
  try {
    return fs.realpathSync(p);
  } catch (_) {
    return path.resolve(p);
  }
}

// Reads imports from disk the way native solc's file loader does: the source
// unit name is looked up under the base path, then under each include path;
// only files inside the base path, an include path or an allowed path may be
// read.
function makeImportCallback(opts) {
  const base = opts.basePath === '' ? '' : path.resolve(opts.basePath);
  const roots = [base === '' ? process.cwd() : base, ...opts.includePaths, ...opts.allowPaths].map(realOrResolved);
  const prefixes = [base, ...opts.includePaths.map((p) => path.resolve(p))];
  return (unitName) => {
    const candidates = path.isAbsolute(unitName)
      ? [unitName]
      : prefixes.map((prefix) => (prefix === '' ? path.resolve(unitName) : path.join(prefix, unitName)));
    for (const candidate of candidates) {
      let real;
      try {
        real = fs.realpathSync(candidate);
      } catch (_) {
        continue;
      }
      if (!fs.statSync(real).isFile()) continue;
      if (!roots.some((root) => isInside(real, root))) {
        return { error: `File outside of allowed directories: ${candidate} (allowed: ${roots.join(', ')})` };
      }
      try {
        return { contents: fs.readFileSync(real, 'utf8') };
      } catch (e) {
        return { error: `Cannot read ${candidate}: ${e.message}` };
      }
    }
    return { error: 'File not found inside the base path or any of the include paths.' };
  };
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    fail(e.message);
    return;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (opts.version) {
    const version = cachedVersion() || loadSolc().version();
    process.stdout.write(`${HEADER}\nVersion: ${version}\n`);
    return;
  }
  if (!opts.standardJson) {
    fail('nothing to do');
    return;
  }
  const input = fs.readFileSync(0, 'utf8');
  const solc = loadSolc();
  const output = solc.compile(input, { import: makeImportCallback(opts) });
  // No process.exit() here: Node exits once the write has drained, so a pipe
  // receives all of it however large it is.
  process.stdout.write(output);
}

main();
