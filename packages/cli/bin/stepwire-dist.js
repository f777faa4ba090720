#!/usr/bin/env node
// The installed CLI: the built JavaScript (the workspace runs src through tsx instead).
import '../dist/main.js';
