/**
 * The mail service behind Mail nodes: SMTP through nodemailer (`FLOWMETER_SMTP_URL`), or, with
 * no URL, capture only (`send()` returns null and the node puts the message in its output).
 */
import { createTransport } from 'nodemailer';
import { errorMessage } from '../core/errors.js';
import { Redactor } from '../core/redact.js';
import type { MailMessage, MailSender } from '../nodes/define.js';

/** Timeouts for connecting, the server greeting and an idle socket, in ms. */
export const SMTP_TIMEOUT_MS = 10_000;

export interface ClosableMailSender extends MailSender {
  /** Closes pooled SMTP connections. */
  close(): void;
}

function addresses(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((a) => (typeof a === 'string' ? a : String((a as { address?: unknown })?.address ?? a)));
}

/**
 * A mail sender for `smtpUrl` (`smtp://user:pass@host:587`, `smtps://…`; nodemailer URL options
 * such as `?pool=false` apply). Connections are pooled. Without a URL, mail is only captured.
 * Send errors are rethrown with the URL's credentials scrubbed from their message.
 */
export function createMailSender(smtpUrl: string | undefined): ClosableMailSender {
  if (!smtpUrl) {
    return {
      send: async () => null,
      close: () => {},
    };
  }
  const redactor = new Redactor();
  try {
    const u = new URL(smtpUrl);
    if (u.password) {
      redactor.add(u.password);
      redactor.add(decodeURIComponent(u.password));
    }
  } catch {
    // nodemailer reports a malformed URL itself, on the first send.
  }
  const transport = createTransport({
    url: smtpUrl,
    pool: true,
    connectionTimeout: SMTP_TIMEOUT_MS,
    greetingTimeout: SMTP_TIMEOUT_MS,
    socketTimeout: SMTP_TIMEOUT_MS,
  });
  return {
    async send(mail: MailMessage) {
      try {
        const info = await transport.sendMail({
          from: mail.from,
          to: mail.to,
          cc: mail.cc,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
        });
        return {
          messageId: String(info.messageId ?? ''),
          accepted: addresses(info.accepted),
          response: String(info.response ?? ''),
        };
      } catch (err) {
        const e = new Error(redactor.redact(errorMessage(err)));
        const code = (err as { code?: unknown } | null)?.code;
        if (typeof code === 'string') Object.assign(e, { smtpCode: code });
        throw e;
      }
    },
    close() {
      transport.close();
    },
  };
}
