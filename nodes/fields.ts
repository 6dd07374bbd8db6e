/** zod fields shared by several node types. */
import { z } from 'zod';
import { MSG_PATH_RE, PATH_RE } from '../core/paths.js';
import { ID_RE } from './define.js';

export const nodeId = z.string().regex(ID_RE, 'must be 1-64 of a-z 0-9 - _');
/** Most names after `msg` or `vars` in a path: a node writing at a path nests the message that deep (core/json-depth.ts). */
export const MAX_PATH_NAMES = 64;
const short = (p: string) => p.split('.').length <= MAX_PATH_NAMES + 1;
const tooLong = `must have at most ${MAX_PATH_NAMES} names after msg or vars`;
export const path = z.string().regex(PATH_RE, 'must be a path rooted at msg or vars, like msg.payload.items').refine(short, tooLong);
export const msgPath = z.string().regex(MSG_PATH_RE, 'must be a path under msg, like msg.payload.total').refine(short, tooLong);
export const template = z.string();

/** What `estimate` assumes of Switch and Filter nodes (one note for both). */
export const SWITCH_FILTER_NOTE = 'every Switch case, Switch default and Filter outcome is taken as possible, whatever the conditions and the payload';
