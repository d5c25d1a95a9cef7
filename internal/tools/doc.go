// Package tools finds external programs the way an admin's root shell
// would: on PATH, then in the sbin directories a non-login PATH may lack.
package tools
