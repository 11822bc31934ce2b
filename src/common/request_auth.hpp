// Who may call an endpoint: a guard put around a route's handler when the
// route is added, so a handler never runs for a request it should not see.
//
// A guard lets a request in when it meets any of the credentials the daemon
// was configured with: a valid, unexpired signature of its method and target
// (common/signature.hpp; the daemons sign every call to each other and the
// master signs its redirects) or, where a route takes one, the admin's bearer
// token. A daemon configured with none of them serves the route to everyone,
// as the original did.
#pragma once

#include <string>

#include "common/router.hpp"

namespace kalavara {
class Signer;
}

namespace kalavara::http {

struct Access {
  // A request signed with one of its secrets is let in. Null: no secret.
  const Signer* signer = nullptr;
  // A request with "Authorization: Bearer <token>" is let in. Null or empty:
  // no token.
  const std::string* admin_token = nullptr;
};

// `handler`, answering in its stead when the request meets none of the
// credentials of `access`: 401 with "WWW-Authenticate: Bearer" when a token
// is configured and the request carries no signature, otherwise 403 with the
// reason the signature was refused. The body is one line and never holds a
// secret or the signature expected. With neither credential configured,
// returns `handler` itself. Both must outlive the returned handler.
Handler guarded(Access access, Handler handler);

}  // namespace kalavara::http
