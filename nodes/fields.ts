/** zod fields shared by several node types. */
import { z } from 'zod';
import { MSG_PATH_RE, PATH_RE } from '../core/paths.js';
import { ID_RE } from './define.js';

export const nodeId = z.string().regex(ID_RE, 'must be 1-64 of a-z 0-9 - _');
export const path = z.string().regex(PATH_RE, 'must be a path rooted at msg or vars, like msg.payload.items');
export const msgPath = z.string().regex(MSG_PATH_RE, 'must be a path under msg, like msg.payload.total');
export const template = z.string();

/** What `estimate` assumes of Switch and Filter nodes (one note for both). */
export const SWITCH_FILTER_NOTE = 'every Switch case, Switch default and Filter outcome is taken as possible, whatever the conditions and the payload';
