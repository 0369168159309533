// The child side of a Peer: runs one handler per IPC message type, one message at a time,
// reports failures to the parent instead of dying silently, and exits with its parent.

/**
 * @param {Record<string, (msg: any) => Promise<object | undefined>>} handlers  a handler's
 *   result, when it returns one, is sent back to the parent
 * @param {() => Promise<void>} close  releases connections before the process exits
 */
export function serve(handlers, close) {
  let chain = Promise.resolve();
  let exiting = false;
  const exit = async (code) => {
    if (exiting) return;
    exiting = true;
    try {
      await close();
    } finally {
      process.exit(code);
    }
  };
  const reportAndExit = (err) => {
    if (process.connected) process.send({ type: 'error', message: err?.stack ?? String(err) });
    setTimeout(() => process.exit(1), 100);
  };
  process.on('message', (msg) => {
    if (msg.type === 'exit') {
      chain = chain.then(() => exit(0));
      return;
    }
    const handler = handlers[msg.type];
    chain = chain.then(async () => {
      if (!handler) throw new Error(`unknown message type "${msg.type}"; expected one of ${Object.keys(handlers)}`);
      const reply = await handler(msg);
      if (reply) process.send(reply);
    });
    chain.catch(reportAndExit);
  });
  process.on('disconnect', () => void exit(0));
  process.on('uncaughtException', reportAndExit);
  process.on('unhandledRejection', reportAndExit);
}
