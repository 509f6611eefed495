/** Reading secrets in the CLI: from standard input, or typed at the terminal without echo. */

/** All of standard input, less one trailing line break: `--password-stdin`. */
export async function readStdinSecret(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** Asks at the terminal without echoing what is typed. */
export function promptSecret(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    return Promise.reject(
      new Error('No terminal to ask for the password on: use --password-stdin'),
    );
  }
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (error?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (text: string) => {
      for (const char of text) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003') return done(new Error('Interrupted'));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    input.on('data', onData);
  });
}

/** A new password, typed twice at the terminal, or read from standard input. */
export async function readNewPassword(fromStdin: boolean): Promise<string> {
  const password = fromStdin ? await readStdinSecret() : await promptSecret('Password: ');
  if (password === '') throw new Error('The password is empty');
  if (!fromStdin && (await promptSecret('Password again: ')) !== password) {
    throw new Error('The two passwords differ');
  }
  return password;
}
