import { type AddressInfo, createServer } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Message } from '../core/types.js';
import type { MailSender, MeterName, NodeContext, NodeServices } from '../nodes/define.js';
import { mailNode } from '../nodes/mail.js';
import { createMailSender } from '../services/mailer.js';

interface Received {
  from: string;
  to: string[];
  raw: string;
}

let smtp: SMTPServer;
let smtpUrl: string;
let received: Received[];
let rejectRcpt: boolean;
let sender: ReturnType<typeof createMailSender>;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(_address, _session, cb) {
      if (rejectRcpt) {
        const err = Object.assign(new Error('mailbox unavailable'), { responseCode: 550 });
        return cb(err);
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((a) => a.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
  smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  sender = createMailSender(smtpUrl);
});
afterAll(async () => {
  sender.close();
  await new Promise<void>((r) => smtp.close(() => r()));
});
beforeEach(() => {
  received = [];
  rejectRcpt = false;
});

const SECRET = 'mail-secret-789';

/** A NodeContext built by hand, recording secrets and meters. */
function makeCtx(fields: Record<string, unknown>, mail: MailSender, env: Record<string, string> = { SIGNATURE: SECRET }) {
  const node = { ...mailNode.config.parse(fields), id: 'notify', type: 'mail' };
  const secrets: string[] = [];
  const meters: Array<[MeterName, number]> = [];
  const services: NodeServices = {
    fetch: globalThis.fetch,
    sleep: async () => {},
    env: (n) => env[n],
    mail,
    sandbox: {
      run: () => {
        throw new Error('no sandbox in mail tests');
      },
    },
  };
  const ctx: NodeContext<typeof node> = {
    node,
    runId: 'run-1',
    tenant: 't1',
    scenario: { id: 's1' },
    taskKey: 'task-1',
    vars: {},
    setVar: () => {},
    log: () => {},
    secret: (v) => secrets.push(v),
    meter: (name, n) => meters.push([name, n]),
    services,
    scope: (msg: Message) => ({ msg, vars: {} }),
  };
  return { ctx, secrets, meters };
}

async function run(fields: Record<string, unknown>, input: Message, mail: MailSender, env?: Record<string, string>) {
  const c = makeCtx(fields, mail, env);
  const result = await mailNode.execute(input, c.ctx);
  if (result.kind !== 'emit') throw new Error('expected emit');
  return { ...c, out: result.messages[0]! };
}

async function fail(fields: Record<string, unknown>, mail: MailSender) {
  const c = makeCtx(fields, mail);
  return Promise.resolve(mailNode.execute({ payload: { owner: 'ada@example.com' } }, c.ctx)).then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as Error & { code: string },
  );
}

const fields = {
  to: '{{msg.payload.owner}}',
  cc: 'boss@example.com',
  from: 'Flowmeter <robot@example.com>',
  subject: 'Hot lead: {{msg.payload.name}}',
  text: 'Call {{msg.payload.name}} now. -- ${env:SIGNATURE}',
};

describe('mail node', () => {
  it('sends through SMTP and reports the send', async () => {
    const input = { payload: { owner: 'ada@example.com', name: 'Grace' } };
    const { out, secrets, meters } = await run(fields, input, sender);
    expect(received).toHaveLength(1);
    const m = received[0]!;
    expect(m.from).toBe('robot@example.com');
    expect(m.to.sort()).toEqual(['ada@example.com', 'boss@example.com']);
    expect(m.raw).toMatch(/^To: ada@example\.com\r?$/m);
    expect(m.raw).toMatch(/^Cc: boss@example\.com\r?$/m);
    expect(m.raw).toMatch(/^Subject: Hot lead: Grace\r?$/m);
    expect(m.raw).toContain(`Call Grace now. -- ${SECRET}`);
    expect(out.payload).toEqual(input.payload);
    expect(out.mail).toMatchObject({
      to: 'ada@example.com',
      cc: 'boss@example.com',
      subject: 'Hot lead: Grace',
      accepted: ['ada@example.com', 'boss@example.com'],
      captured: false,
    });
    expect((out.mail as { messageId: string }).messageId).toMatch(/^<.+@.+>$/);
    expect(JSON.stringify(out.mail)).not.toContain(SECRET);
    expect(secrets).toEqual([SECRET]);
    expect(meters).toEqual([['mailsSent', 1]]);
  });

  it('captures the mail without an SMTP URL', async () => {
    const captured = createMailSender(undefined);
    const { out, meters } = await run({ to: 'ada@example.com', subject: 'Hi', html: '<b>{{msg.payload.name}}</b>' }, { payload: { name: 'Ada' } }, captured, {
      FLOWMETER_MAIL_FROM: 'ops@example.com',
    });
    expect(out.mail).toEqual({ to: 'ada@example.com', from: 'ops@example.com', subject: 'Hi', html: '<b>Ada</b>', captured: true });
    expect(meters).toEqual([]);
    expect(received).toHaveLength(0);
    const dflt = await run({ to: 'a@b.test' }, { payload: {} }, captured, {});
    expect(dflt.out.mail).toEqual({ to: 'a@b.test', from: 'flowmeter@localhost', subject: '', captured: true });
  });

  it('never resolves ${env:…} coming from the message', async () => {
    const { out, secrets } = await run(
      { to: 'a@b.test', text: '{{msg.payload.text}}' },
      { payload: { text: 'leak ${env:SIGNATURE}' } },
      createMailSender(undefined),
    );
    expect((out.mail as { text: string }).text).toBe('leak ${env:SIGNATURE}');
    expect(secrets).toEqual([]);
  });

  it('fails with MAIL_ERROR when the server rejects the recipient', async () => {
    rejectRcpt = true;
    const err = await fail(fields, sender);
    expect(err.code).toBe('MAIL_ERROR');
    expect(err.message).toMatch(/^could not send mail: /);
    expect(err.message).not.toContain(SECRET);
    expect(received).toHaveLength(0);
  });

  it('fails with MAIL_ERROR when the SMTP server is unreachable', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const dead = createMailSender(`smtp://user:smtp-pass-000@127.0.0.1:${port}`);
    try {
      const err = await fail(fields, dead);
      expect(err.code).toBe('MAIL_ERROR');
      expect(err.message).toContain('ECONNREFUSED');
      expect(err.message).not.toContain('smtp-pass-000');
    } finally {
      dead.close();
    }
  });

  it('fails with MAIL_ERROR when `to` renders empty', async () => {
    const err = await fail({ ...fields, to: '{{msg.payload.nobody}}' }, sender);
    expect(err.code).toBe('MAIL_ERROR');
    expect(received).toHaveLength(0);
  });

  it('fails with ENV_MISSING for an unset variable', async () => {
    const c = makeCtx(fields, createMailSender(undefined), {});
    await expect(mailNode.execute({ payload: { owner: 'a@b.test' } }, c.ctx)).rejects.toMatchObject({ code: 'ENV_MISSING' });
  });
});
