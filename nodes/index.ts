/** The registry of node types. */
import type { NodeDefinition } from './define.js';
import { catchNode } from './catch.js';
import { commentNode } from './comment.js';
import { connectorNode } from './connector.js';
import { conversionNode } from './conversion.js';
import { exceptionNode } from './exception.js';
import { fanOutNode } from './fan-out.js';
import { filterNode } from './filter.js';
import { functionNode } from './function.js';
import { loopNode } from './loop.js';
import { mailNode } from './mail.js';
import { sequencerNode } from './sequencer.js';
import { switchNode } from './switch.js';

export const NODE_TYPES: readonly NodeDefinition[] = [
  functionNode, switchNode, filterNode, fanOutNode, sequencerNode, loopNode, connectorNode,
  mailNode, conversionNode, catchNode, exceptionNode, commentNode,
] as unknown as NodeDefinition[];

const byType = new Map(NODE_TYPES.map((d) => [d.type, d]));

export function nodeType(type: string): NodeDefinition | undefined {
  return byType.get(type);
}
