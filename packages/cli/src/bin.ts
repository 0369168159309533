#!/usr/bin/env node
// The tfjs-ddp executable.
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const code = await runCli(hideBin(process.argv));
// A command that is done exits, whatever a library still holds open: @nats-io/transport-node 3.4
// keeps the socket of a connection attempt that timed out waiting for the server's INFO (an endpoint
// that accepts TCP but never speaks NATS), and that socket alone kept the process alive after the
// error was printed. Output is written synchronously to pipes and files, so nothing is lost.
process.exit(code);
