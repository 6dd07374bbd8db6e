import { z } from 'zod';
import { errorMessage, FlowError } from '../core/errors.js';
import type { Scope } from '../core/paths.js';
import { REF_RE, Redactor, type RefSources, resolveRefs } from '../core/redact.js';
import { renderText } from '../core/templates.js';
import { alt, one } from './cost.js';
import { defineNode, type MailMessage, nextRef } from './define.js';
import { nodeId, template } from './fields.js';

/** The sender when neither `from` nor `FLOWMETER_MAIL_FROM` gives one. */
export const DEFAULT_MAIL_FROM = 'flowmeter@localhost';

/**
 * Renders a template that may also hold `${env:NAME}` and `${secret:NAME}` references. Only the template's own text
 * is searched for references, never the values templates render (a message cannot make the
 * node read an environment variable), and env values are never rendered as templates.
 */
function renderWithEnv(tpl: string | undefined, scope: Scope, from: RefSources, onSecret: (v: string) => void): string {
  if (tpl === undefined) return '';
  let out = '';
  let last = 0;
  for (const m of tpl.matchAll(new RegExp(REF_RE.source, 'g'))) {
    out += renderText(tpl.slice(last, m.index), scope) + resolveRefs(m[0], from, onSecret);
    last = m.index + m[0].length;
  }
  return out + renderText(tpl.slice(last), scope);
}

/**
 * Sends one email through the configured SMTP server (`FLOWMETER_SMTP_URL`). Without one, the
 * message is captured in the output (`mail.captured: true`) instead. Failure → `MAIL_ERROR`.
 */
export const mailNode = defineNode({
  type: 'mail',
  config: z.object({
    /** Recipients (template; comma-separated addresses allowed). */
    to: template,
    /** Copy recipients (template). */
    cc: template.optional(),
    /** Subject line (template). */
    subject: template.default(''),
    /** Plain-text body (template). */
    text: template.optional(),
    /** HTML body (template). */
    html: template.optional(),
    /** Sender (template); default `FLOWMETER_MAIL_FROM`, else `flowmeter@localhost`. */
    from: template.optional(),
    next: nodeId.optional(),
  }),
  emitsOutputs: true,
  refs: (n) => nextRef(n.next),
  credentials: (n) => Object.values(n).filter((v): v is string => typeof v === 'string'),
  estimate: (n, c) => alt(one(c.next(n.next)), c.fails()),
  async execute(input, ctx) {
    const { node } = ctx;
    const redactor = new Redactor();
    // Per §1, values read with ${env:…} in mail settings are secrets.
    const onSecret = (v: string) => {
      ctx.secret(v);
      redactor.add(v);
    };
    const scope = ctx.scope(input);
    const render = (t: string | undefined) => renderWithEnv(t, scope, { env: ctx.services.env, secret: ctx.services.secret }, onSecret);

    const to = render(node.to).trim();
    const cc = render(node.cc).trim();
    const from = render(node.from).trim() || ctx.services.env('FLOWMETER_MAIL_FROM')?.trim() || DEFAULT_MAIL_FROM;
    const subject = render(node.subject);
    const text = node.text === undefined ? undefined : render(node.text);
    const html = node.html === undefined ? undefined : render(node.html);
    if (!to) throw new FlowError('MAIL_ERROR', 'the mail has no recipient: `to` rendered empty');

    const mail: MailMessage = { from, to, subject };
    if (cc) mail.cc = cc;
    if (text !== undefined) mail.text = text;
    if (html !== undefined) mail.html = html;

    let sent: Awaited<ReturnType<typeof ctx.services.mail.send>>;
    try {
      sent = await ctx.services.mail.send(mail);
    } catch (err) {
      throw new FlowError('MAIL_ERROR', redactor.redact(`could not send mail: ${errorMessage(err)}`));
    }
    if (sent === null) {
      return { kind: 'emit', messages: [{ ...input, mail: { ...mail, captured: true } }] };
    }
    ctx.meter('mailsSent', 1);
    const info: Record<string, unknown> = { to };
    if (cc) info.cc = cc;
    Object.assign(info, { subject, messageId: sent.messageId, accepted: sent.accepted, captured: false });
    return { kind: 'emit', messages: [{ ...input, mail: info }] };
  },
});
