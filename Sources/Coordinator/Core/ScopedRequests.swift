import AgentFlowCore
import Foundation
import Observability
import Wire

/// Client requests made with a credential's scope (``Wire/ClientRequest/scoped(_:_:)``; the
/// client socket checked the role): one bound to a tenant cancels, lists in the queue and sees
/// the tenant rows of that tenant only. What the store answers goes to the query service with
/// the scope, which applies the same rule to the jobs it reads.
extension CoordinatorCore {
    mutating func scopedRequest(_ scope: ClientScope, _ request: ClientRequest, route: [Data]) {
        guard let tenant = scope.tenant else { return clientRequest(request, route: route) }
        switch request {
        case .cancel(let id):
            if let job = jobs[id], job.tenant != tenant {
                stats.refusedRequests += 1
                note(.refused(.tenant))
                reply(.error(code: ClientReply.notAuthorized,
                             message: "this credential belongs to tenant \(tenant); job \(Limits.printable(id)) belongs to another tenant"), to: route)
                return
            }
            if let job = jobs[id] { end(job, .cancelled, reason: "cancelled by the user", now: now.wall) }
            out.messages.append(.answerFromStore(route: route, .scoped(scope, .status(job: id))))
        case .queue:
            reply(.queue(queueEntries(now: now.wall).filter { $0.tenant == tenant }), to: route)
        case .tenants:
            reply(.tenants(tenantReports().filter { $0.name == tenant }), to: route)
        case .status, .jobs, .attempts, .ledger, .events, .queryJobs, .outputs, .outputBundle, .transcript:
            out.messages.append(.answerFromStore(route: route, .scoped(scope, request)))
        case .scoped:
            reply(.error(code: 2, message: "a request carries at most one scope"), to: route)
        case .workers, .drain, .submit:
            clientRequest(request, route: route)
        }
    }
}
